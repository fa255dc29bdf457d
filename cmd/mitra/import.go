package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// ImportFlags are the import options shared by 'mitra import' and 'mitra
// feed add'.
type ImportFlags struct {
	Format       string   `default:"auto" enum:"auto,stix,misp,misp-feed,csv,text" help:"Input format: stix (2.1 or 2.0 bundles, envelopes, objects, JSON lines), misp (MISP event JSON), misp-feed (a directory or URL with manifest.json), csv, text (one value per line); auto guesses from the name and content."`
	TLP          string   `help:"TLP marking for objects that carry none (clear, green, amber, amber+strict, red); for MISP, the least restrictive marking given."`
	Confidence   *int     `help:"Confidence (0-100) for objects that carry none."`
	Columns      string   `help:"CSV column mapping: field:column,... with fields value, type, description, first_seen, last_seen, labels, confidence, name and columns as 1-based numbers or header names (default: the first column is the value)."`
	Delimiter    string   `help:"CSV delimiter (default: detected among , ; tab |)."`
	Encoding     string   `help:"Text encoding: utf-8, utf-16, latin-1, windows-1252 (default: detected)."`
	Header       *bool    `help:"The CSV's first row is a header (default: detected)." negatable:""`
	Type         string   `help:"Type of every value when the list gives none: ipv4, ipv6, domain, url, email, md5, sha1, sha256, sha512 (default: inferred per value)."`
	Source       string   `help:"Name of the list for its indicators' deterministic ids (default: the file's name or the feed's URL)."`
	SharingGroup []string `name:"sharing-group" help:"Map a MISP sharing group (uuid or name) to a Mitra sharing group: MISP:MITRA (default: the Mitra group of the same name)."`
}

func (f ImportFlags) options() (feeds.Options, error) {
	q := map[string][]string{"tlp": {f.TLP}, "delimiter": {f.Delimiter}, "encoding": {f.Encoding}, "type": {f.Type}, "source": {f.Source},
		"columns": {f.Columns}, "sharing_group": f.SharingGroup}
	if f.Format != "auto" {
		q["format"] = []string{f.Format}
	}
	opt, err := feeds.OptionsFromQuery(q)
	opt.Confidence, opt.CSV.Header = f.Confidence, f.Header
	return opt, err
}

// ImportCmd is 'mitra import'.
type ImportCmd struct {
	StoreFlags  `embed:""`
	ImportFlags `embed:""`
	Inputs      []string `arg:"" help:"Files, MISP feed directories or http(s) URLs; - for stdin (with --format)."`
	Into        string   `required:"" help:"Collection (id or alias) to import into."`
	As          string   `help:"User the import is made as (its organisation owns what it imports; the collection's grants apply). Default: the organisation given by --org, as an analyst."`
	Org         string   `help:"Organisation (id or name) the import is made for when --as is not given (default: the default organisation)."`
}

// newImporter is the importer over st that checks as srv does, with the
// stored warning lists.
func newImporter(ctx context.Context, st store.Store, ist store.ImportFeeds, srv *taxii.Server) (*feeds.Importer, error) {
	warnings := feeds.NewWarningLists(ist)
	if err := warnings.Load(ctx, ist); err != nil {
		return nil, fmt.Errorf("warning lists: %w", err)
	}
	return &feeds.Importer{Store: st, Check: srv.Check, Warnings: warnings, Groups: st}, nil
}

func importStore(st store.Store) (store.ImportFeeds, error) {
	ist, ok := st.(store.ImportFeeds)
	if !ok {
		return nil, errors.New("this store keeps no import feeds or warning lists")
	}
	return ist, nil
}

func importPrincipal(ctx context.Context, st store.Store, user, org string) (*access.Principal, error) {
	if user == "" {
		p, _, err := detectPrincipal(ctx, st, org)
		return p, err
	}
	u, err := st.GetUser(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("--as %s: %w", user, err)
	}
	groups, err := st.GroupsOf(ctx, u.Organisation)
	if err != nil {
		return nil, err
	}
	return &access.Principal{User: u.Name, Organisation: u.Organisation, Groups: groups, Role: u.Role}, nil
}

// guessFormat names the format of an input from its name and first bytes.
func guessFormat(name string, head []byte) string {
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		return "misp-feed"
	}
	switch strings.ToLower(filepath.Ext(strings.TrimSuffix(name, "/"))) {
	case ".csv", ".tsv":
		return "csv"
	case ".txt", ".list":
		return "text"
	}
	if strings.HasSuffix(name, "/") || strings.HasSuffix(name, "manifest.json") {
		return "misp-feed"
	}
	if strings.Contains(string(head), `"Event"`) {
		return "misp"
	}
	return "stix"
}

// Run implements the command.
func (c *ImportCmd) Run(ctx context.Context, e *env) error {
	opt, err := c.options()
	if err != nil {
		return err
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		p, err := importPrincipal(ctx, st, c.As, c.Org)
		if err != nil {
			return err
		}
		srv := taxii.NewServer(taxii.Config{Store: st, Validator: newValidator()})
		imp, err := newImporter(ctx, st, ist, srv)
		if err != nil {
			return err
		}
		imp.Label = "mitra import"
		failed := false
		for _, in := range c.Inputs {
			rep, err := c.one(ctx, e, imp, p, in, opt)
			fmt.Fprintf(e.stdout, "%s: %d received, %d added, %d updated, %d unchanged, %d rejected, %d flagged inactive\n",
				in, rep.Received, rep.Added, rep.Updated, rep.Unchanged, rep.Rejected, rep.Inactive)
			for _, r := range rep.Rejections {
				fmt.Fprintf(e.stdout, "  rejected %s: %s\n", r.ID, r.Reason)
			}
			for _, f := range rep.Flags {
				fmt.Fprintf(e.stdout, "  inactive %s: %s\n", f.ID, f.Reason)
			}
			if err != nil {
				return fmt.Errorf("%s (run the same command again: what was stored is not stored twice): %w", in, err)
			}
			failed = failed || rep.Rejected > 0
		}
		if failed {
			return errSilent
		}
		return nil
	})
}

func (c *ImportCmd) one(ctx context.Context, e *env, imp *feeds.Importer, p *access.Principal, in string, opt feeds.Options) (feeds.Report, error) {
	var r io.Reader
	location := in
	isURL := strings.HasPrefix(in, "http://") || strings.HasPrefix(in, "https://")
	switch {
	case in == "-":
		if opt.Format == "" {
			return feeds.Report{}, errors.New("stdin needs --format")
		}
		r, location = e.stdin, "stdin"
	case isURL && (opt.Format == "misp-feed" || (opt.Format == "" && guessFormat(in, nil) == "misp-feed")):
		opt.Format = "misp-feed"
		location = strings.TrimSuffix(in, "manifest.json")
	case isURL:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in, nil)
		if err != nil {
			return feeds.Report{}, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return feeds.Report{}, err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return feeds.Report{}, fmt.Errorf("GET %s: %s", in, res.Status)
		}
		r = res.Body
	default:
		if st, err := os.Stat(in); err == nil && st.IsDir() {
			opt.Format = "misp-feed"
			break
		}
		f, err := os.Open(in)
		if err != nil {
			return feeds.Report{}, err
		}
		defer f.Close()
		r, location = f, filepath.Base(in)
	}
	if opt.Format == "" {
		head := make([]byte, 4096)
		n, _ := io.ReadFull(r, head)
		head = head[:n]
		opt.Format = guessFormat(in, head)
		r = io.MultiReader(strings.NewReader(string(head)), r)
	}
	src, err := imp.Open(ctx, p, opt, r, location)
	if err != nil {
		return feeds.Report{}, err
	}
	bar := spinner(e, "importing "+in)
	last := 0
	rep, err := imp.Import(ctx, p, c.Into, src, opt, func(r feeds.Report) { bar.Add(r.Received - last); last = r.Received })
	bar.Finish()
	return rep, err
}
