package feeds

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
)

// MISP feed (the format MISP's "feeds" pull: a manifest.json naming the
// events, one <uuid>.json per event), described in the MISP core format
// (draft-dulaunoy-misp-core-format). One event per collection.

type mispOrg struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type mispTag struct {
	Name string `json:"name"`
}

type mispAttribute struct {
	UUID         string    `json:"uuid"`
	Type         string    `json:"type"`
	Category     string    `json:"category"`
	Value        string    `json:"value"`
	ToIDS        bool      `json:"to_ids"`
	Timestamp    string    `json:"timestamp"`
	Comment      string    `json:"comment"`
	Distribution string    `json:"distribution"`
	Deleted      bool      `json:"deleted"`
	Tag          []mispTag `json:"Tag,omitempty"`
}

type mispEvent struct {
	UUID             string          `json:"uuid"`
	Info             string          `json:"info"`
	Date             string          `json:"date"`
	ThreatLevelID    string          `json:"threat_level_id"`
	Analysis         string          `json:"analysis"`
	Distribution     string          `json:"distribution"`
	Published        bool            `json:"published"`
	Timestamp        string          `json:"timestamp"`
	PublishTimestamp string          `json:"publish_timestamp"`
	Orgc             mispOrg         `json:"Orgc"`
	Tag              []mispTag       `json:"Tag"`
	Attribute        []mispAttribute `json:"Attribute"`
}

type mispManifestEntry struct {
	Info          string    `json:"info"`
	Date          string    `json:"date"`
	Analysis      string    `json:"analysis"`
	ThreatLevelID string    `json:"threat_level_id"`
	Timestamp     string    `json:"timestamp"`
	Orgc          mispOrg   `json:"Orgc"`
	Tag           []mispTag `json:"Tag"`
}

// mispType is a value's MISP attribute type and category (MISP's
// describeTypes: each type with a category it is allowed in).
func mispType(v Value) (typ, category string) {
	switch v.Kind {
	case KindIP:
		return "ip-dst", "Network activity"
	case KindDomain:
		return "domain", "Network activity"
	case KindURL:
		return "url", "Network activity"
	case KindEmail:
		return "email-src", "Payload delivery"
	default:
		return v.Kind.String(), "Payload delivery"
	}
}

// mispTLP is the MISP taxonomy tag of a TLP level.
func mispTLP(t access.TLP) string {
	switch t {
	case access.TLPClear:
		return "tlp:clear"
	case access.TLPGreen:
		return "tlp:green"
	case access.TLPAmberStrict:
		return "tlp:amber+strict"
	case access.TLPRed:
		return "tlp:red"
	}
	return "tlp:amber"
}

// renderMISP writes the feed. Events are distributed "your organisation
// only" (0): the selection was made for the requester's organisation,
// and the pulling MISP must not pass it further on its own.
func renderMISP(sel *Selection, o RenderOptions, skip func(string)) ([]File, error) {
	producer := o.Producer
	if producer == "" {
		producer = "Mitra"
	}
	org := mispOrg{Name: producer, UUID: uuid.NewSHA1(exportNamespace, []byte("org|"+producer)).String()}
	events := map[string]*mispEvent{}
	var order []string
	newest := map[string]int64{}
	// Attributes per collection, counted first so that each event's list
	// is allocated once.
	carried := make([][]Value, len(sel.Indicators))
	perColl := map[string]int{}
	for i, ind := range sel.Indicators {
		vals, ok := listed(ind, "misp", skip, KindIP, KindDomain, KindURL, KindMD5, KindSHA1, KindSHA256, KindEmail)
		if ok {
			carried[i] = vals
			perColl[ind.Collection] += len(vals)
		}
	}
	tags := map[access.TLP][]mispTag{}
	for i, ind := range sel.Indicators {
		vals := carried[i]
		if vals == nil {
			continue
		}
		ev := events[ind.Collection]
		if ev == nil {
			ev = &mispEvent{UUID: uuid.NewSHA1(exportNamespace, []byte("event|"+ind.Collection)).String(),
				Info: "Mitra collection " + ind.Collection, ThreatLevelID: "4", Analysis: "2", Distribution: "0",
				Published: true, Orgc: org, Tag: []mispTag{}, Attribute: make([]mispAttribute, 0, perColl[ind.Collection])}
			events[ind.Collection] = ev
			order = append(order, ind.Collection)
		}
		ts := ind.Modified.Unix()
		if ts > newest[ind.Collection] {
			newest[ind.Collection] = ts
		}
		tag := tags[ind.TLP]
		if tag == nil {
			tag = []mispTag{{Name: mispTLP(ind.TLP)}} // shared by every attribute of the level: never modified
			tags[ind.TLP] = tag
		}
		comment := ind.ID
		if ind.Name != "" {
			comment += " " + ind.Name
		}
		for _, v := range vals {
			typ, cat := mispType(v)
			ev.Attribute = append(ev.Attribute, mispAttribute{
				UUID: uuid.NewSHA1(exportNamespace, []byte("attribute|"+ind.ID+"|"+typ+"|"+v.V)).String(),
				Type: typ, Category: cat, Value: v.V, ToIDS: true, Timestamp: strconv.FormatInt(ts, 10),
				Comment: comment, Distribution: "5", Tag: tag})
		}
	}
	manifest := map[string]mispManifestEntry{}
	files := []File{{Name: "manifest.json", ContentType: "application/json"}}
	for _, c := range order {
		ev := events[c]
		ts := strconv.FormatInt(newest[c], 10)
		ev.Timestamp, ev.PublishTimestamp = ts, ts
		ev.Date = "1970-01-01"
		for _, ind := range sel.Indicators {
			if ind.Collection == c && ind.Modified.Unix() == newest[c] {
				ev.Date = ind.Modified.UTC().Format("2006-01-02")
				break
			}
		}
		data, err := encodeEvent(ev)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: ev.UUID + ".json", ContentType: "application/json", Data: data})
		manifest[ev.UUID] = mispManifestEntry{Info: ev.Info, Date: ev.Date, Analysis: ev.Analysis,
			ThreatLevelID: ev.ThreatLevelID, Timestamp: ts, Orgc: org, Tag: ev.Tag}
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		return nil, err
	}
	files[0].Data = data
	return files, nil
}

// encodeEvent writes {"Event":ev} attribute by attribute into one buffer
// sized up front: marshalling a million attributes at once grows and
// copies the encoder's buffer many times over.
func encodeEvent(ev *mispEvent) ([]byte, error) {
	attrs := ev.Attribute
	head := *ev
	head.Attribute = []mispAttribute{}
	h, err := json.Marshal(&head)
	if err != nil {
		return nil, err
	}
	// Attribute is the last field: h ends with "Attribute":[]}.
	h, ok := bytes.CutSuffix(h, []byte("]}"))
	if !ok {
		return nil, fmt.Errorf("misp event encoding: unexpected %q", h[max(0, len(h)-16):])
	}
	var b bytes.Buffer
	b.Grow(len(h) + len(attrs)*400 + 16)
	b.WriteString(`{"Event":`)
	b.Write(h)
	enc := json.NewEncoder(&b)
	for i := range attrs {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(&attrs[i]); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	b.WriteString("]}}")
	return b.Bytes(), nil
}
