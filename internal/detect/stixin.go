package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// stixState decodes STIX 2.1 JSON lines: each line a bundle, an
// observed-data (with object_refs to SCOs on earlier lines, or the
// deprecated embedded objects), or an SCO that a later observed-data
// refers to. It is stateful, so it runs in the source's goroutine.
type stixState struct {
	scos map[string]map[string]any
}

// maxRemembered bounds the SCOs kept for later observed-data.
const maxRemembered = 100_000

func newSTIXState() *stixState { return &stixState{scos: map[string]map[string]any{}} }

// decode returns the observations of one line (none for SCOs and SDOs
// other than observed-data).
func (s *stixState) decode(line []byte) ([]*pattern.Observation, error) {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("STIX JSON: %w", err)
	}
	if d.More() {
		return nil, errors.New("STIX JSON: more than one value on the line")
	}
	typ, _ := m["type"].(string)
	switch typ {
	case "":
		return nil, errors.New("STIX JSON: object has no type")
	case "bundle":
		list, _ := m["objects"].([]any)
		var objs []map[string]any
		for _, o := range list {
			if om, ok := o.(map[string]any); ok {
				objs = append(objs, om)
				s.remember(om)
			}
		}
		return s.observations(objs)
	case "observed-data":
		objs := []map[string]any{m}
		if refs, ok := m["object_refs"].([]any); ok {
			for _, r := range refs {
				if id, ok := r.(string); ok {
					if sco, ok := s.scos[id]; ok {
						objs = append(objs, sco)
					}
				}
			}
		}
		return s.observations(objs)
	}
	s.remember(m)
	return nil, nil
}

func (s *stixState) remember(m map[string]any) {
	id, _ := m["id"].(string)
	typ, _ := m["type"].(string)
	if id == "" || typ == "observed-data" || !strings.HasPrefix(id, typ+"--") {
		return
	}
	if _, isSCO := m["created"]; isSCO {
		return // SDOs and SROs carry created; SCOs do not
	}
	if len(s.scos) >= maxRemembered {
		clear(s.scos)
	}
	s.scos[id] = m
}

func (s *stixState) observations(objs []map[string]any) ([]*pattern.Observation, error) {
	obs, err := pattern.ObservationsFromObjects(objs)
	if err != nil {
		return nil, fmt.Errorf("STIX: %w", err)
	}
	return obs, nil
}
