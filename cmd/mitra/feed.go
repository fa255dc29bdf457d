package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/feeds"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// FeedCmd manages scheduled feeds, warning lists and inactive flags.
type FeedCmd struct {
	Add         FeedAddCmd         `cmd:"" help:"Add a feed pulled on a schedule by 'mitra serve' (conditional GET with ETag and If-Modified-Since)."`
	List        FeedListCmd        `cmd:"" help:"List feeds with their last run."`
	Run         FeedRunCmd         `cmd:"" help:"Run a feed now and print what it did."`
	Remove      FeedRemoveCmd      `cmd:"" help:"Remove a feed (what it imported stays)."`
	Warninglist FeedWarninglistCmd `cmd:"" name:"warninglist" help:"Manage warning lists: values that never become active indicators."`
	Inactive    FeedInactiveCmd    `cmd:"" help:"List a collection's objects flagged inactive, with the reasons."`
}

// FeedAddCmd is 'mitra feed add'.
type FeedAddCmd struct {
	StoreFlags  `embed:""`
	ImportFlags `embed:""`
	Name        string        `arg:"" help:"Feed name."`
	URL         string        `arg:"" help:"http(s) URL of the list, bundle, MISP event, or MISP feed directory."`
	Into        string        `required:"" help:"Collection (id or alias) to import into."`
	As          string        `required:"" help:"User the feed imports as (the collection's grants and ownership apply)."`
	Every       time.Duration `default:"1h" help:"Interval between runs (at least 1m)."`
}

func (c *FeedAddCmd) scheduler(ctx context.Context, st store.Store) (*feeds.Scheduler, error) {
	return newScheduler(ctx, st)
}

func newScheduler(ctx context.Context, st store.Store) (*feeds.Scheduler, error) {
	ist, err := importStore(st)
	if err != nil {
		return nil, err
	}
	imp, err := newImporter(ctx, st, ist, taxii.NewServer(taxii.Config{Store: st, Validator: newValidator()}))
	if err != nil {
		return nil, err
	}
	return &feeds.Scheduler{Feeds: ist, Users: st, Importer: imp, Lists: ist}, nil
}

// Run implements the command.
func (c *FeedAddCmd) Run(ctx context.Context, e *env) error {
	opt, err := c.options()
	if err != nil {
		return err
	}
	format := c.Format
	if format == "auto" {
		format = guessFormat(c.URL, nil)
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		s, err := c.scheduler(ctx, st)
		if err != nil {
			return err
		}
		f := &store.ImportFeed{Name: c.Name, URL: c.URL, Format: format, Collection: c.Into, User: c.As, Interval: c.Every}
		if err := s.Add(ctx, f, opt); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "feed %s added: %s (%s) into %s as %s every %s; 'mitra serve' runs it\n", f.Name, f.URL, f.Format, f.Collection, f.User, f.Interval)
		return nil
	})
}

// FeedListCmd is 'mitra feed list'.
type FeedListCmd struct {
	StoreFlags `embed:""`
	JSON       bool `help:"Print JSON."`
}

// Run implements the command.
func (c *FeedListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		fs, err := ist.ListImportFeeds(ctx)
		if err != nil {
			return err
		}
		if c.JSON {
			out := make([]feeds.FeedInfo, 0, len(fs))
			for _, f := range fs {
				out = append(out, feeds.Info(f))
			}
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tFORMAT\tCOLLECTION\tUSER\tEVERY\tLAST RUN\tLAST REPORT\tURL")
		for _, f := range fs {
			last := "never"
			if !f.LastRun.IsZero() {
				last = f.LastRun.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Format, f.Collection, f.User, f.Interval, last, summary(f.LastReport), f.URL)
		}
		return tw.Flush()
	})
}

func summary(raw []byte) string {
	var r feeds.RunReport
	if len(raw) == 0 || json.Unmarshal(raw, &r) != nil {
		return "-"
	}
	switch {
	case r.Error != "":
		return "error: " + r.Error
	case r.NotModified:
		return "not modified"
	}
	return fmt.Sprintf("%d added, %d updated, %d unchanged, %d rejected, %d inactive", r.Added, r.Updated, r.Unchanged, r.Rejected, r.Inactive)
}

// FeedRunCmd is 'mitra feed run'.
type FeedRunCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"Feed name."`
}

// Run implements the command.
func (c *FeedRunCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		s, err := newScheduler(ctx, st)
		if err != nil {
			return err
		}
		rep, err := s.RunFeed(ctx, c.Name)
		if rep.At.IsZero() && err != nil {
			return err
		}
		b, _ := json.Marshal(rep)
		fmt.Fprintf(e.stdout, "feed %s: %s\n", c.Name, summary(b))
		for _, r := range rep.Rejections {
			fmt.Fprintf(e.stdout, "  rejected %s: %s\n", r.ID, r.Reason)
		}
		for _, f := range rep.Flags {
			fmt.Fprintf(e.stdout, "  inactive %s: %s\n", f.ID, f.Reason)
		}
		return err
	})
}

// FeedRemoveCmd is 'mitra feed remove'.
type FeedRemoveCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"Feed name."`
}

// Run implements the command.
func (c *FeedRemoveCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		if err := ist.DeleteImportFeed(ctx, c.Name); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "feed %s removed\n", c.Name)
		return nil
	})
}

// FeedWarninglistCmd manages warning lists.
type FeedWarninglistCmd struct {
	Add    WarninglistAddCmd    `cmd:"" help:"Add or replace a warning list from a file: MISP warninglist JSON, or one entry per line."`
	List   WarninglistListCmd   `cmd:"" help:"List the warning lists (built-in and stored)."`
	Remove WarninglistRemoveCmd `cmd:"" help:"Remove a stored warning list."`
	Apply  WarninglistApplyCmd  `cmd:"" help:"Check a collection's stored indicators against the lists as they are now: flag those on a list, clear the others."`
}

// WarninglistApplyCmd is 'mitra feed warninglist apply'.
type WarninglistApplyCmd struct {
	StoreFlags `embed:""`
	Collection string `arg:"" help:"Collection (id or alias)."`
}

// Run implements the command.
func (c *WarninglistApplyCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		s, err := newScheduler(ctx, st)
		if err != nil {
			return err
		}
		checked, flagged, err := s.Importer.Rescan(ctx, c.Collection)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d indicators checked, %d inactive\n", checked, flagged)
		return nil
	})
}

// WarninglistAddCmd is 'mitra feed warninglist add'.
type WarninglistAddCmd struct {
	StoreFlags  `embed:""`
	Name        string `arg:"" help:"List name."`
	File        string `arg:"" help:"File with the entries."`
	Type        string `enum:",cidr,hostname,string,substring" default:"" help:"Kind of entries: cidr, hostname (with subdomains), string (exact), substring (default: the file's, else cidr when every entry is an address or range, else hostname)."`
	Description string `help:"What the list is."`
}

// Run implements the command.
func (c *WarninglistAddCmd) Run(ctx context.Context, e *env) error {
	f, err := os.Open(c.File)
	if err != nil {
		return err
	}
	defer f.Close()
	l, err := feeds.ParseList(c.Name, c.Type, f)
	if err != nil {
		return err
	}
	l.Name = c.Name
	if c.Description != "" {
		l.Description = c.Description
	}
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		if err := ist.PutWarningList(ctx, l.StoredList()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "warning list %s (%s): %d entries; servers apply it from their next feed round, new imports at once\n", l.Name, l.Kind, len(l.Entries))
		return nil
	})
}

// WarninglistListCmd is 'mitra feed warninglist list'.
type WarninglistListCmd struct {
	StoreFlags `embed:""`
}

// Run implements the command.
func (c *WarninglistListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		w := feeds.NewWarningLists(ist)
		if err := w.Load(ctx, ist); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTYPE\tENTRIES\tBUILT-IN\tDESCRIPTION")
		for _, l := range w.Lists() {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%v\t%s\n", l.Name, l.Kind, len(l.Entries), l.Builtin, l.Description)
		}
		return tw.Flush()
	})
}

// WarninglistRemoveCmd is 'mitra feed warninglist remove'.
type WarninglistRemoveCmd struct {
	StoreFlags `embed:""`
	Name       string `arg:"" help:"List name."`
}

// Run implements the command.
func (c *WarninglistRemoveCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		if err := ist.DeleteWarningList(ctx, c.Name); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "warning list %s removed\n", c.Name)
		return nil
	})
}

// FeedInactiveCmd is 'mitra feed inactive'.
type FeedInactiveCmd struct {
	StoreFlags `embed:""`
	Collection string `arg:"" help:"Collection (id or alias)."`
}

// Run implements the command.
func (c *FeedInactiveCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ist, err := importStore(st)
		if err != nil {
			return err
		}
		col, err := st.GetCollection(ctx, c.Collection)
		if err != nil {
			return err
		}
		flags, err := ist.ListInactive(ctx, col.ID)
		if err != nil {
			return err
		}
		for _, f := range flags {
			fmt.Fprintf(e.stdout, "%s\t%s\n", f.ObjectID, f.Reason)
		}
		return nil
	})
}
