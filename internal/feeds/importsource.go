package feeds

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
)

// Formats are the import formats.
var Formats = []string{"stix", "misp", "misp-feed", "csv", "text"}

// Recipients resolves MISP sharing groups through opt and the store: the
// organisations of the Mitra group a sharing group maps to (by uuid or
// name in opt.SharingGroups, else a Mitra group of the same name). An
// unmapped sharing group has no recipients: the objects stay with the
// importing organisation (AMBER+STRICT), never wider than MISP allowed.
func Recipients(ctx context.Context, groups GroupStore, opt MISPOptions) func(*MISPSharing) []string {
	return func(sg *MISPSharing) []string {
		if sg == nil || groups == nil {
			return nil
		}
		name := opt.SharingGroups[sg.UUID]
		if name == "" {
			name = opt.SharingGroups[sg.Name]
		}
		if name == "" {
			name = sg.Name
		}
		if name == "" {
			return nil
		}
		g, err := groups.GetGroup(ctx, name)
		if err != nil {
			return nil
		}
		return g.Orgs
	}
}

// Open returns the source of a format: r for stix, misp, csv and text;
// for misp-feed, location (a directory or an http(s) URL) and r, when
// not nil, is the feed's manifest.json already fetched. p is who imports:
// a list's indicator ids are the importing organisation's own, so that
// two organisations importing the same public list each own theirs.
func (i *Importer) Open(ctx context.Context, p *access.Principal, opt Options, r io.Reader, location string) (Source, error) {
	var floor access.TLP
	if opt.TLP != "" {
		l, err := access.ParseTLP(opt.TLP)
		if err != nil {
			return Source{}, fmt.Errorf("tlp: %v: %w", err, ErrInvalid)
		}
		floor = l
	}
	rcpts := Recipients(ctx, i.Groups, opt.MISP)
	switch opt.Format {
	case "stix", "":
		return STIXSource(r), nil
	case "misp":
		return MISPSource(MISPFileEvents(r), floor, rcpts), nil
	case "misp-feed":
		var fetch Fetcher
		if strings.HasPrefix(location, "http://") || strings.HasPrefix(location, "https://") {
			client := i.HTTP
			if client == nil {
				client = http.DefaultClient
			}
			fetch = URLFetcher(client, location)
		} else {
			if st, err := os.Stat(location); err != nil || !st.IsDir() {
				return Source{}, fmt.Errorf("misp-feed %q: want a directory or an http(s) URL: %w", location, ErrInvalid)
			}
			fetch = DirFetcher(location)
		}
		if r == nil {
			rc, err := fetch(ctx, "manifest.json")
			if err != nil {
				return Source{}, fmt.Errorf("misp-feed: %w", err)
			}
			defer rc.Close()
			r = rc
		}
		m, err := ReadManifest(r)
		if err != nil {
			return Source{}, err
		}
		return MISPSource(MISPFeedEvents(ctx, fetch, m), floor, rcpts), nil
	case "csv", "text":
		c := opt.CSV
		c.Text = c.Text || opt.Format == "text"
		if c.Source == "" {
			c.Source = location
		}
		c.organisation = p.Organisation
		return CSVSource(r, c, i.now())
	}
	return Source{}, fmt.Errorf("format %q: want one of %s: %w", opt.Format, strings.Join(Formats, ", "), ErrInvalid)
}
