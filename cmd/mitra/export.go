package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/search"
	"github.com/mitra-cert/mitra/internal/store"
)

// LifecycleFlags configure the indicator lifecycle; 'mitra serve' takes
// them with an export- prefix.
type LifecycleFlags struct {
	Model     string   `name:"model" type:"existingfile" env:"MITRA_EXPORT_MODEL" help:"Lifecycle model file (JSON: half_life per class ip, domain, url, hash, email, other as Go durations; sighting_boost; false_positive_factor; threshold; default_confidence). Built-in defaults when empty."`
	Threshold *float64 `name:"threshold" help:"Lifecycle score below which an indicator is retired (overrides the model; default 20)."`
}

func (f LifecycleFlags) model() (feeds.Model, error) {
	m := feeds.DefaultModel()
	if f.Model != "" {
		var err error
		if m, err = feeds.LoadModel(f.Model); err != nil {
			return m, err
		}
	}
	if f.Threshold != nil {
		m.Threshold = *f.Threshold
	}
	return m, nil
}

// ExportServeFlags configure the export API of 'mitra serve'.
type ExportServeFlags struct {
	LifecycleFlags `embed:""`
	Cache          time.Duration `name:"cache" default:"1m" env:"MITRA_EXPORT_CACHE" help:"How long a rendered export is reused for the same requester and query (0: render every request)."`
	RPZOrigin      string        `name:"rpz-origin" default:"rpz.mitra." help:"Name of the RPZ zone."`
}

// ExportCmd writes an export of the active indicators an organisation may
// read.
type ExportCmd struct {
	StoreFlags     `embed:""`
	LifecycleFlags `embed:""`
	Format         string   `arg:"" help:"Format: suricata, zeek, rpz, plain, edl-ip, edl-domain, edl-url, csv, stix, misp."`
	Collection     []string `name:"collection" sep:"," help:"Collections (ids or aliases); every collection the organisation may read when empty."`
	Org            string   `help:"Organisation the export is made for (name or identity id): its access policy applies. The default organisation when empty."`
	MinConfidence  int      `name:"min-confidence" help:"Leave out indicators with a lower confidence."`
	Out            string   `short:"o" help:"Directory to write the export's files to (Suricata lists and MISP events need it); standard output (main file only) when empty."`
	RPZOrigin      string   `name:"rpz-origin" default:"rpz.mitra." help:"Name of the RPZ zone."`
	DatasetMin     int      `name:"dataset-min" default:"20" help:"Suricata: from this many values of a kind and TLP, rules use a dataset or list file instead of one rule per value."`
	SearchFlags    `embed:"" group:"Export from a search (any of these: the active indicators among all the search's results)"`
}

// SearchFlags are the filters of an export from a search: those of the
// search API (/x-mitra-search/); each help ends with the HTTP parameter
// an export over HTTP takes for it.
type SearchFlags struct {
	Query        string   `name:"query" help:"Search text: words that must all occur (a word ending in * is a prefix). (q)"`
	Type         []string `name:"type" sep:"," help:"STIX types; only indicators are exported, so other types export nothing. (type)"`
	TLP          []string `name:"tlp" sep:"," help:"TLP levels: clear, green, amber, amber+strict, red. (tlp)"`
	Organisation []string `name:"organisation" sep:"," help:"Organisations (identity ids) that submitted. (organisation)"`
	ModifiedFrom string   `name:"modified-from" help:"Modified at or after this timestamp or date. (modified_from)"`
	ModifiedTo   string   `name:"modified-to" help:"Modified before this timestamp or date. (modified_to)"`
}

// params are the search API's parameters for the flags (and the
// collections), or nil when no search flag is given.
func (f SearchFlags) params(collections []string) url.Values {
	v := url.Values{}
	set := func(k string, vals ...string) {
		for _, x := range vals {
			if x != "" {
				v.Add(k, x)
			}
		}
	}
	set("q", f.Query)
	set("type", f.Type...)
	set("tlp", f.TLP...)
	set("organisation", f.Organisation...)
	set("modified_from", f.ModifiedFrom)
	set("modified_to", f.ModifiedTo)
	if len(v) == 0 {
		return nil
	}
	set("collection", collections...)
	return v
}

// Run implements the command.
func (c *ExportCmd) Run(ctx context.Context, e *env) error {
	m, err := c.model()
	if err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	p, _, err := detectPrincipal(ctx, st, c.Org)
	if err != nil {
		return err
	}
	x := &feeds.Exporter{Store: st, Model: m, Flags: warningFlags(st)}
	req := feeds.Request{Principal: p, Collections: c.Collection, MinConfidence: c.MinConfidence, Search: c.params(c.Collection),
		SkipRaw: !feeds.NeedsRaw(c.Format)}
	if req.Search != nil {
		ss, ok := st.(search.Store)
		if !ok {
			return fmt.Errorf("this store backend cannot search")
		}
		x.Matcher = search.New(search.Config{Store: ss})
	}
	sel, err := x.Select(ctx, req)
	if err != nil {
		return err
	}
	ex, err := feeds.Render(c.Format, sel, feeds.RenderOptions{RPZOrigin: c.RPZOrigin, DatasetMin: c.DatasetMin})
	if err != nil {
		return err
	}
	if len(ex.Skipped) > 0 {
		fmt.Fprintln(e.stderr, "skipped:", feeds.SkippedSummary(ex.Skipped))
	}
	if c.Out == "" {
		if len(ex.Files) > 1 {
			fmt.Fprintf(e.stderr, "%d more files (lists or events) not written: give --out DIR\n", len(ex.Files)-1)
		}
		_, err := e.stdout.Write(ex.Files[0].Data)
		return err
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	for _, f := range ex.Files {
		if err := os.WriteFile(filepath.Join(c.Out, f.Name), f.Data, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "%d indicators, %d files written to %s\n", len(sel.Indicators), len(ex.Files), c.Out)
	return nil
}

// IndicatorCmd groups indicator commands.
type IndicatorCmd struct {
	Score IndicatorScoreCmd `cmd:"" help:"Print an indicator's lifecycle score and, when it is retired from exports and detection, why."`
}

// IndicatorScoreCmd explains an indicator's lifecycle state.
type IndicatorScoreCmd struct {
	StoreFlags     `embed:""`
	LifecycleFlags `embed:""`
	ID             string   `arg:"" help:"Indicator id."`
	Collection     []string `name:"collection" sep:"," help:"Collections (ids or aliases) to read it and its sightings and verdicts from; every readable one when empty."`
	Org            string   `help:"Organisation asking (name or identity id); the default organisation when empty."`
}

// Run implements the command.
func (c *IndicatorScoreCmd) Run(ctx context.Context, e *env) error {
	m, err := c.model()
	if err != nil {
		return err
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	p, _, err := detectPrincipal(ctx, st, c.Org)
	if err != nil {
		return err
	}
	s, err := (&feeds.Exporter{Store: st, Model: m, Flags: warningFlags(st)}).ScoreOf(ctx, feeds.Request{Principal: p, Collections: c.Collection}, c.ID)
	if errors.Is(err, feeds.ErrNotFound) {
		return fmt.Errorf("indicator %s: not found (or not readable by this organisation)", c.ID)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// warningFlags is the store's record of indicators a warning list made
// inactive (issue 16), or nil for a store without imports.
func warningFlags(st any) feeds.Flags {
	if f, ok := st.(store.ImportFeeds); ok {
		return f
	}
	return nil
}
