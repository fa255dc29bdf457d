package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/stix"
)

// searchClient is the search API client of the server flags.
func searchClient(f HashServerFlags) (*search.Client, error) {
	cl, err := search.NewClient(f.URL)
	if err != nil {
		return nil, err
	}
	cl.User, cl.Password, cl.Token = f.User, f.Password, f.Token
	return cl, nil
}

// SearchCmd searches a server for objects by text and filters.
type SearchCmd struct {
	HashServerFlags `embed:""`
	Text            []string  `arg:"" optional:"" help:"Words to find in names, descriptions, labels and patterns (a word ending in * is a prefix); none: every object, newest first."`
	Type            []string  `sep:"," help:"Only these STIX types."`
	TLP             []string  `name:"tlp" sep:"," help:"Only these TLP levels: clear, green, amber, amber+strict, red."`
	Collection      []string  `sep:"," help:"Only these collections (ids or aliases)."`
	Organisation    []string  `sep:"," help:"Only objects submitted by these organisations (identity ids)."`
	From            time.Time `help:"Only objects modified at or after this time (RFC 3339)." format:"2006-01-02T15:04:05Z07:00"`
	To              time.Time `help:"Only objects modified before this time (RFC 3339)." format:"2006-01-02T15:04:05Z07:00"`
	Limit           int       `default:"50" help:"Hits per page (at most 500)."`
	Cursor          string    `help:"Continue from the cursor a previous page printed."`
	JSON            bool      `help:"Print the page as JSON."`
}

// Run implements the command.
func (c *SearchCmd) Run(ctx context.Context, e *env) error {
	cl, err := searchClient(c.HashServerFlags)
	if err != nil {
		return err
	}
	res, err := cl.Search(ctx, search.Query{Text: strings.Join(c.Text, " "), Types: c.Type, TLPs: c.TLP, Collections: c.Collection,
		Organisations: c.Organisation, ModifiedFrom: c.From, ModifiedTo: c.To, Limit: c.Limit, Cursor: c.Cursor})
	if err != nil {
		return err
	}
	if c.JSON {
		return writeJSONTo(e.stdout, res)
	}
	for _, h := range res.Hits {
		mod := ""
		if !h.Modified.IsZero() {
			mod = stix.FormatMicro(h.Modified)
		}
		fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\t%s\n", h.ID, h.TLP, h.Collection, mod, h.Name)
		if h.Snippet != "" {
			fmt.Fprintf(e.stdout, "\t%s\n", strings.ReplaceAll(h.Snippet, "\n", " "))
		}
	}
	if len(res.Hits) == 0 {
		fmt.Fprintln(e.stderr, "no hits")
	}
	if res.Next != "" {
		fmt.Fprintf(e.stderr, "more: --cursor %s\n", res.Next)
	}
	return nil
}

// LookupCmd asks a server whether values are known.
type LookupCmd struct {
	HashServerFlags `embed:""`
	Values          []string `arg:"" optional:"" help:"IPs, CIDR ranges, domains, URLs, e-mail addresses or hashes."`
	File            string   `short:"f" help:"Also read values from this file, one per line (- for standard input; # starts a comment)."`
	JSON            bool     `help:"Print the answers as JSON, one per value."`
}

// Run implements the command. The exit status is 0 when some value is
// known, 1 when none is (like grep), so scripts can test it.
func (c *LookupCmd) Run(ctx context.Context, e *env) error {
	values := c.Values
	if c.File != "" {
		var r io.Reader = e.stdin
		if c.File != "-" {
			f, err := os.Open(c.File)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if v := strings.TrimSpace(sc.Text()); v != "" && !strings.HasPrefix(v, "#") {
				values = append(values, v)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", c.File, err)
		}
	}
	if len(values) == 0 {
		return errors.New("give values, or --file")
	}
	cl, err := searchClient(c.HashServerFlags)
	if err != nil {
		return err
	}
	known := false
	enc := json.NewEncoder(e.stdout)
	for lo := 0; lo < len(values); lo += search.MaxLookupValues {
		res, err := cl.Lookup(ctx, values[lo:min(lo+search.MaxLookupValues, len(values))])
		if err != nil {
			return err
		}
		for _, r := range res {
			known = known || r.Known
			if c.JSON {
				if err := enc.Encode(r); err != nil {
					return fmt.Errorf("write: %w", err)
				}
				continue
			}
			if !r.Known {
				fmt.Fprintf(e.stdout, "%s\tunknown\n", r.Value)
				continue
			}
			fmt.Fprintf(e.stdout, "%s\tknown\n", r.Value)
			for _, g := range []struct {
				what string
				refs []search.Ref
			}{{"indicator", r.Indicators}, {"observable", r.Observables}, {"sighting", r.Sightings}, {"report", r.Reports}} {
				for _, ref := range g.refs {
					how := ""
					if ref.Match != "" && ref.Match != "exact" {
						how = " (in " + ref.Match + ")"
					}
					fmt.Fprintf(e.stdout, "\t%s\t%s\t%s%s\n", g.what, ref.ID, ref.Name, how)
				}
			}
		}
	}
	if !known {
		return errSilent
	}
	return nil
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
