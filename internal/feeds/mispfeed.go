package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// maxEvent bounds one MISP event file (MISP events are read whole).
const maxEvent = 256 << 20

// Fetcher opens a file of a MISP feed by name (manifest.json,
// <uuid>.json), from a directory or under a URL.
type Fetcher func(ctx context.Context, name string) (io.ReadCloser, error)

// DirFetcher reads a feed from a directory.
func DirFetcher(dir string) Fetcher {
	return func(_ context.Context, name string) (io.ReadCloser, error) {
		if !fs.ValidPath(name) || strings.Contains(name, "/") {
			return nil, fmt.Errorf("feed file %q: %w", name, ErrInvalid)
		}
		return os.Open(filepath.Join(dir, name))
	}
}

// URLFetcher reads a feed under base (a URL ending in /) with client.
func URLFetcher(client *http.Client, base string) Fetcher {
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return func(ctx context.Context, name string) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+name, nil)
		if err != nil {
			return nil, err
		}
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			res.Body.Close()
			return nil, fmt.Errorf("GET %s: %s", base+name, res.Status)
		}
		return res.Body, nil
	}
}

// MISPManifest is a feed's manifest.json: event uuid to a summary.
type MISPManifest map[string]json.RawMessage

// ReadManifest reads a feed's manifest.
func ReadManifest(r io.Reader) (MISPManifest, error) {
	var m MISPManifest
	if err := json.NewDecoder(io.LimitReader(r, maxEvent)).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json: %v: %w", err, ErrInvalid)
	}
	return m, nil
}

// MISPFeedEvents yields the events of a MISP feed (manifest.json and one
// <uuid>.json per event), in uuid order, one event file at a time.
func MISPFeedEvents(ctx context.Context, fetch Fetcher, manifest MISPManifest) func(yield func([]MISPEvent, error) bool) {
	return func(yield func([]MISPEvent, error) bool) {
		ids := make([]string, 0, len(manifest))
		for id := range manifest {
			if _, err := uuid.Parse(id); err != nil {
				if !yield(nil, fmt.Errorf("manifest.json: %q is not an event uuid: %w", id, ErrInvalid)) {
					return
				}
				continue
			}
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			rc, err := fetch(ctx, id+".json")
			if err != nil {
				yield(nil, fmt.Errorf("event %s: %w", id, err))
				return
			}
			data, err := io.ReadAll(io.LimitReader(rc, maxEvent))
			rc.Close()
			if err != nil {
				yield(nil, fmt.Errorf("event %s: %w", id, err))
				return
			}
			evs, err := ParseMISPEvent(data)
			if err != nil {
				err = fmt.Errorf("event %s: %w", id, err)
			}
			if !yield(evs, err) {
				return
			}
		}
	}
}

// MISPFileEvents yields the events of one MISP JSON document.
func MISPFileEvents(r io.Reader) func(yield func([]MISPEvent, error) bool) {
	return func(yield func([]MISPEvent, error) bool) {
		data, err := io.ReadAll(io.LimitReader(r, maxEvent+1))
		if err == nil && len(data) > maxEvent {
			err = errors.New("MISP event larger than 256 MiB")
		}
		if err != nil {
			yield(nil, err)
			return
		}
		yield(ParseMISPEvent(data))
	}
}
