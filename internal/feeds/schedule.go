package feeds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// RunReport is what one scheduled run of a feed did.
type RunReport struct {
	Report
	// NotModified: the server answered 304 to the conditional GET
	// (If-None-Match, If-Modified-Since; RFC 9110 §13.1): nothing was
	// read, everything is unchanged.
	NotModified bool      `json:"not_modified,omitempty"`
	At          time.Time `json:"at"`
	Error       string    `json:"error,omitempty"`
}

// Scheduler runs feeds: each feed is fetched from its URL with the
// validators of its last successful run and imported as the user who
// added it.
type Scheduler struct {
	Feeds    FeedStore
	Users    UserStore
	Importer *Importer
	// Lists, when set, reloads the stored warning lists before each round
	// (another process may have changed them).
	Lists ListStore
	HTTP  *http.Client
	Log   *slog.Logger
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Scheduler) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return http.DefaultClient
}

// Add checks and stores a feed; its first run is due at once.
func (s *Scheduler) Add(ctx context.Context, f *store.ImportFeed, opt Options) error {
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("feed URL %q: want http or https: %w", f.URL, ErrInvalid)
	}
	opt.Format = f.Format
	if !slices.Contains(Formats, f.Format) {
		return fmt.Errorf("format %q: want one of %s: %w", f.Format, strings.Join(Formats, ", "), ErrInvalid)
	}
	if _, err := newPreparer(opt); err != nil {
		return err
	}
	if f.Interval < time.Minute {
		return fmt.Errorf("interval %s: at least a minute: %w", f.Interval, ErrInvalid)
	}
	col, err := s.Importer.Store.GetCollection(ctx, f.Collection)
	if err != nil {
		return fmt.Errorf("collection %s: %w", f.Collection, err)
	}
	p, err := s.principal(ctx, f.User)
	if err != nil {
		return err
	}
	if _, write := access.CollectionAccess(p, col); !write {
		return fmt.Errorf("collection %s: %s may not write to it: %w", f.Collection, f.User, store.ErrNotFound)
	}
	f.Collection, f.Organisation = col.ID, p.Organisation
	if f.Options, err = json.Marshal(opt); err != nil {
		return err
	}
	f.NextRun = s.Importer.now()
	return s.Feeds.CreateImportFeed(ctx, f)
}

func (s *Scheduler) principal(ctx context.Context, user string) (*access.Principal, error) {
	u, err := s.Users.GetUser(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("feed user %s: %w", user, err)
	}
	groups, err := s.Users.GroupsOf(ctx, u.Organisation)
	if err != nil {
		return nil, err
	}
	return &access.Principal{User: u.Name, Organisation: u.Organisation, Groups: groups, Role: u.Role}, nil
}

// RunFeed runs one feed now and records the run.
func (s *Scheduler) RunFeed(ctx context.Context, name string) (RunReport, error) {
	f, err := s.Feeds.GetImportFeed(ctx, name)
	if err != nil {
		return RunReport{}, err
	}
	rep, runErr := s.run(ctx, f)
	rep.At = s.Importer.now()
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	f.LastRun, f.NextRun = rep.At, rep.At.Add(f.Interval)
	if f.LastReport, err = json.Marshal(rep); err != nil {
		return rep, err
	}
	if err := s.Feeds.SaveImportFeedRun(ctx, f); err != nil {
		return rep, err
	}
	return rep, runErr
}

// manifestURL is where a MISP feed's manifest is: the feed URL names it or
// the directory it is in.
func manifestURL(u string) (manifest, base string) {
	if strings.HasSuffix(u, "/manifest.json") {
		return u, strings.TrimSuffix(u, "manifest.json")
	}
	base = strings.TrimSuffix(u, "/") + "/"
	return base + "manifest.json", base
}

func (s *Scheduler) run(ctx context.Context, f *store.ImportFeed) (RunReport, error) {
	var rep RunReport
	var opt Options
	if err := json.Unmarshal(f.Options, &opt); err != nil {
		return rep, fmt.Errorf("feed %s options: %w", f.Name, err)
	}
	opt.Format = f.Format
	p, err := s.principal(ctx, f.User)
	if err != nil {
		return rep, err
	}
	target, base := f.URL, f.URL
	if f.Format == "misp-feed" {
		target, base = manifestURL(f.URL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return rep, err
	}
	if f.ETag != "" {
		req.Header.Set("If-None-Match", f.ETag)
	}
	if f.LastModified != "" {
		req.Header.Set("If-Modified-Since", f.LastModified)
	}
	res, err := s.client().Do(req)
	if err != nil {
		return rep, fmt.Errorf("feed %s: %w", f.Name, err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusNotModified:
		rep.NotModified = true
		return rep, nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return rep, fmt.Errorf("feed %s: GET %s: %s", f.Name, target, res.Status)
	}
	imp := *s.Importer
	imp.HTTP = s.client()
	if imp.Label == "" {
		imp.Label = "feed " + f.Name
	}
	src, err := imp.Open(ctx, p, opt, res.Body, base)
	if err != nil {
		return rep, err
	}
	r, err := imp.Import(ctx, p, f.Collection, src, opt, nil)
	rep.Report = r
	if err != nil {
		return rep, err
	}
	// The validators are kept only after the whole body was imported: a
	// failed run is fetched again in full next time.
	f.ETag, f.LastModified = res.Header.Get("ETag"), res.Header.Get("Last-Modified")
	return rep, nil
}

// RunDue runs the feeds whose next run is due, one after the other.
func (s *Scheduler) RunDue(ctx context.Context) error {
	if s.Lists != nil && s.Importer.Warnings != nil {
		if err := s.Importer.Warnings.Load(ctx, s.Lists); err != nil {
			s.log().Warn("warning lists not reloaded", "err", err)
		}
	}
	fs, err := s.Feeds.ListImportFeeds(ctx)
	if err != nil {
		return err
	}
	now := s.Importer.now()
	for _, f := range fs {
		if f.NextRun.After(now) {
			continue
		}
		// Claimed for the length of a run's interval: another server that
		// saw it due too leaves it; one that dies mid-run leaves it to the
		// next interval.
		won, err := s.Feeds.ClaimImportFeed(ctx, f.Name, f.NextRun, now.Add(f.Interval))
		if err != nil {
			return err
		}
		if !won {
			continue
		}
		rep, err := s.RunFeed(ctx, f.Name)
		if errors.Is(err, context.Canceled) {
			return err
		}
		if err != nil {
			s.log().Warn("feed run failed", "feed", f.Name, "err", err)
			continue
		}
		s.log().Info("feed run", "feed", f.Name, "not_modified", rep.NotModified, "added", rep.Added, "updated", rep.Updated,
			"unchanged", rep.Unchanged, "rejected", rep.Rejected, "inactive", rep.Inactive)
	}
	return nil
}

// Run runs due feeds every tick until ctx ends.
func (s *Scheduler) Run(ctx context.Context, tick time.Duration) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("feeds", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
