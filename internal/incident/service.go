// Package incident coordinates incident reports between operators of
// critical infrastructure and their national CERT: an incident is a STIX
// 2.1 incident object with Mitra's property-extension (ExtensionID),
// published through the TAXII ingest as its reporter so that the access
// policy, ownership and federation apply to it as to every object;
// follow-up reports are STIX report objects referring to it. Beside the
// objects the store keeps each incident's reporting regime, the stages met
// with their clocks, the lifecycle (reported, acknowledged, under
// investigation, mitigated, closed) with every step timestamped and
// attributed, and the notifications each step and each deadline causes.
//
// Whoever may not read the incident object may not learn anything about
// the incident: every read asks access.Decide on the object, and a hidden
// incident answers exactly as a missing one (ErrNotFound).
package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
)

// Errors; the API maps them to statuses.
var (
	// ErrInvalid: bad input (400).
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the caller sees the incident but may not do this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no such incident, or not visible to the caller (404).
	ErrNotFound = store.ErrNotFound
	// ErrConflict: the incident changed meanwhile, or the transition is
	// not allowed from its state (409).
	ErrConflict = store.ErrConflict
)

// State is a step of the lifecycle.
type State string

// The lifecycle, in order.
const (
	StateReported           State = "reported"
	StateAcknowledged       State = "acknowledged"
	StateUnderInvestigation State = "under-investigation"
	StateMitigated          State = "mitigated"
	StateClosed             State = "closed"
)

// States is the lifecycle in order.
var States = []State{StateReported, StateAcknowledged, StateUnderInvestigation, StateMitigated, StateClosed}

func (s State) rank() int { return slices.Index(States, s) }

// ParseState reads a state name ("under investigation" and
// "under_investigation" are accepted too).
func ParseState(s string) (State, error) {
	st := State(strings.NewReplacer(" ", "-", "_", "-").Replace(strings.ToLower(strings.TrimSpace(s))))
	if st.rank() < 0 {
		names := make([]string, len(States))
		for i, x := range States {
			names[i] = string(x)
		}
		return "", fmt.Errorf("state %q: want one of %s: %w", s, strings.Join(names, ", "), ErrInvalid)
	}
	return st, nil
}

// Event kinds of an incident's history.
const (
	EventReported   = "reported"
	EventTransition = "transition"
	EventStage      = "stage"
	EventFollowUp   = "follow-up"
)

// Config configures a Service. Store, Objects and Publisher are required.
type Config struct {
	Store     Store
	Objects   Objects
	Publisher Publisher
	// Audit receives an audit record per step (nil: none).
	Audit   Auditor
	Regimes *Regimes // nil: the built-in regimes
	// Sectors offered for incidents (nil: DefaultSectors).
	Sectors []string
	// Targets hear of every step and deadline alert.
	Targets notify.Targets
	Now     func() time.Time
	Logger  *slog.Logger
	// Exercise makes this the drill's incident service: every report is
	// an exercise (Report.Exercise), and only exercise incidents are
	// listed, shown, moved on and alerted on. A service without it sees
	// only real incidents, so the two never mix even on one store.
	Exercise bool
}

// Service reports incidents and moves them through their lifecycle.
type Service struct {
	cfg Config
}

// New returns a service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Objects == nil || cfg.Publisher == nil {
		return nil, errors.New("incident: Store, Objects and Publisher are required")
	}
	if cfg.Regimes == nil {
		rs, err := NewRegimes()
		if err != nil {
			return nil, err
		}
		cfg.Regimes = rs
	}
	if len(cfg.Sectors) == 0 {
		cfg.Sectors = DefaultSectors
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Targets.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg}, nil
}

// Regimes returns the regimes the service knows.
func (s *Service) Regimes() *Regimes { return s.cfg.Regimes }

// Sectors returns the sectors the service offers.
func (s *Service) Sectors() []string { return slices.Clone(s.cfg.Sectors) }

// Report is a new incident report.
type Report struct {
	// Collection the incident objects are published to (id or alias).
	Collection string `json:"collection"`
	Regime     string `json:"regime"`
	// CERT is the organisation (identity id) the incident is reported to.
	CERT           string    `json:"cert"`
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	Sector         string    `json:"sector"`
	Service        string    `json:"service,omitempty"`
	Severity       string    `json:"severity"`
	Impact         string    `json:"impact,omitempty"`
	SuspectedCause string    `json:"suspected_cause,omitempty"`
	CrossBorder    bool      `json:"cross_border,omitempty"`
	AwareAt        time.Time `json:"aware_at"`
	// TLP of the objects (default amber+strict); the CERT is always a
	// named recipient, with Recipients.
	TLP        string   `json:"tlp,omitempty"`
	Recipients []string `json:"recipients,omitempty"`
	// Related are the ids of the indicators, observables, malware and
	// attack patterns involved: each gets a related-to relationship.
	Related []string `json:"related,omitempty"`
	// IdempotencyKey, when set, makes the report safe to retry: the
	// incident's id (and its relationships' ids) are derived from the
	// reporting organisation and the key, so a retry after a failure
	// anywhere (publication done, state not recorded; or both done, answer
	// lost) finds or completes the same incident instead of creating
	// another. Clients retrying a report send the same key.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Exercise marks the incident and its objects as exercise data (the
	// exercise marking stix.ExerciseMarkingID): drills report through a
	// service configured with Exercise, which sets it, and a real service
	// never lists, shows or alerts on an exercise incident.
	Exercise bool `json:"exercise,omitempty"`
}

// Incident is an incident as a caller who may see it sees it.
type Incident struct {
	ID          string                `json:"id"`
	Collection  string                `json:"collection"`
	Name        string                `json:"name"`
	Regime      string                `json:"regime"`
	RegimeTitle string                `json:"regime_title,omitempty"`
	Reporter    string                `json:"reporter"`
	CERT        string                `json:"cert"`
	State       State                 `json:"state"`
	AwareAt     time.Time             `json:"aware_at"`
	Reported    time.Time             `json:"reported"`
	Updated     time.Time             `json:"updated"`
	Stages      []StageStatus         `json:"stages"`
	History     []store.IncidentEvent `json:"history,omitempty"`
	// Object is the STIX incident (the latest version the caller sees).
	Object json.RawMessage `json:"object,omitempty"`
}

// Report publishes a new incident for p's organisation and starts its
// clocks; the report meets the regime's stages met "on report".
func (s *Service) Report(ctx context.Context, p *access.Principal, r Report) (*Incident, error) {
	if p == nil || p.Organisation == "" {
		return nil, fmt.Errorf("only a member of an organisation reports incidents: %w", ErrForbidden)
	}
	if s.cfg.Exercise {
		r.Exercise = true
	} else if r.Exercise {
		return nil, fmt.Errorf("exercise incidents are reported to the drill service: %w", ErrInvalid)
	}
	regime, props, sh, err := s.checkReport(ctx, p, &r)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	if r.AwareAt.After(now) {
		return nil, fmt.Errorf("aware_at %s is in the future: %w", r.AwareAt.Format(time.RFC3339), ErrInvalid)
	}
	sh.exercise = r.Exercise
	id := "incident--" + uuid.NewString()
	if r.IdempotencyKey != "" {
		id = incidentID(p.Organisation, r.IdempotencyKey)
		// A retry of a report recorded in full: the same incident.
		if rec, err := s.cfg.Store.GetIncident(ctx, id); err == nil {
			return s.retried(ctx, p, rec)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	coll, err := s.cfg.Objects.GetCollection(ctx, r.Collection)
	if err != nil {
		return nil, err
	}
	objs, err := incidentObjects(id, &r, props, sh, now)
	if err != nil {
		return nil, err
	}
	// A retry of a report whose objects were published but whose state was
	// not recorded (a failure in between): the objects stay as published,
	// the clocks start when they were first published, and the state is
	// recorded now.
	published := false
	if r.IdempotencyKey != "" {
		prev, at, err := s.publishedBefore(ctx, p, coll.ID, id)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			objs[0], now, published = prev, at, true
		}
	}
	if !published {
		pub, err := s.withExerciseMarking(ctx, coll.ID, r.Exercise, objs)
		if err != nil {
			return nil, err
		}
		if err := s.cfg.Publisher.Publish(ctx, p, r.Collection, pub); err != nil {
			return nil, fmt.Errorf("publish incident: %w", err)
		}
	}
	def, _ := json.Marshal(regime)
	rec := &store.IncidentRecord{ID: id, Collection: coll.ID, Regime: regime.Name, RegimeDef: def, Reporter: p.Organisation,
		CERT: r.CERT, Name: r.Name, State: string(StateReported), AwareAt: r.AwareAt.UTC(), Reported: now, Updated: now}
	var met []store.StageMet
	for _, st := range regime.Stages {
		if st.On == OnReport {
			met = append(met, store.StageMet{Incident: id, Stage: st.Name, At: now, User: p.User, Organisation: p.Organisation, Ref: id})
		}
	}
	ev := store.IncidentEvent{Incident: id, At: now, User: p.User, Organisation: p.Organisation, Kind: EventReported,
		To: string(StateReported), Ref: id, Note: "reported under " + regime.Name}
	ds, err := s.deliveries(rec, "incident.reported", "Incident reported: "+r.Name, map[string]any{"by": p.Organisation})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.CreateIncident(ctx, rec, ev, met, ds); err != nil {
		if r.IdempotencyKey != "" && errors.Is(err, store.ErrConflict) {
			// A concurrent retry recorded it first.
			if got, gerr := s.cfg.Store.GetIncident(ctx, id); gerr == nil {
				return s.retried(ctx, p, got)
			}
		}
		return nil, fmt.Errorf("record incident: %w", err)
	}
	s.audit(ctx, p, "incident.report", rec, "reported under "+regime.Name)
	return s.view(ctx, rec, objs[0], true)
}

// withExerciseMarking adds the exercise marking-definition to exercise
// objects published to a collection that does not hold it yet (whoever
// stored it first owns it: another organisation may not add it again).
func (s *Service) withExerciseMarking(ctx context.Context, collection string, exercise bool, objs []json.RawMessage) ([]json.RawMessage, error) {
	if !exercise {
		return objs, nil
	}
	page, err := s.cfg.Objects.QueryObjects(ctx, collection, store.Query{IDs: []string{stix.ExerciseMarkingID}, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(page.Entries) > 0 {
		return objs, nil
	}
	return append(slices.Clone(objs), stix.ExerciseMarking), nil
}

// retried answers a retried report with the incident recorded before, if
// p's organisation reported it (the key is the reporter's own).
func (s *Service) retried(ctx context.Context, p *access.Principal, rec *store.IncidentRecord) (*Incident, error) {
	if rec.Reporter != p.Organisation {
		return nil, fmt.Errorf("idempotency key: incident %s was reported by another organisation: %w", rec.ID, ErrConflict)
	}
	return s.Get(ctx, p, rec.ID)
}

// publishedBefore returns the incident object id as an earlier attempt of
// p's organisation published it in the collection, with its creation
// time, or nil when there is none. An object of that id created by
// another organisation is a conflict, never adopted.
func (s *Service) publishedBefore(ctx context.Context, p *access.Principal, collection, id string) (json.RawMessage, time.Time, error) {
	page, err := s.cfg.Objects.QueryObjects(ctx, collection, store.Query{IDs: []string{id}, WithBody: true, Limit: 1})
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(page.Entries) == 0 {
		return nil, time.Time{}, nil
	}
	raw := page.Entries[0].Raw
	var o struct {
		CreatedBy string    `json:"created_by_ref"`
		Created   time.Time `json:"created"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, time.Time{}, fmt.Errorf("incident object %s: %w", id, err)
	}
	if o.CreatedBy != p.Organisation {
		return nil, time.Time{}, fmt.Errorf("idempotency key: object %s was created by another organisation: %w", id, ErrConflict)
	}
	return raw, o.Created.UTC(), nil
}

func (s *Service) checkReport(ctx context.Context, p *access.Principal, r *Report) (Regime, Properties, sharing, error) {
	bad := func(format string, a ...any) (Regime, Properties, sharing, error) {
		return Regime{}, Properties{}, sharing{}, fmt.Errorf(format+": %w", append(a, ErrInvalid)...)
	}
	if r.Collection == "" {
		return bad("collection is required")
	}
	regime, ok := s.cfg.Regimes.Get(r.Regime)
	if !ok {
		names := []string{}
		for _, x := range s.cfg.Regimes.List() {
			names = append(names, x.Name)
		}
		return bad("regime %q: want one of %s", r.Regime, strings.Join(names, ", "))
	}
	if strings.TrimSpace(r.Name) == "" {
		return bad("name is required")
	}
	if !slices.Contains(s.cfg.Sectors, r.Sector) {
		return bad("sector %q: want one of %s", r.Sector, strings.Join(s.cfg.Sectors, ", "))
	}
	if !slices.Contains(Severities, r.Severity) {
		return bad("severity %q: want one of %s", r.Severity, strings.Join(Severities, ", "))
	}
	if r.AwareAt.IsZero() {
		return bad("aware_at (when the organisation became aware) is required")
	}
	orgs, err := s.cfg.Objects.ListOrganisations(ctx)
	if err != nil {
		return Regime{}, Properties{}, sharing{}, err
	}
	known := func(id string) bool {
		return slices.ContainsFunc(orgs, func(o *store.Organisation) bool { return o.ID == id })
	}
	if !known(r.CERT) {
		return bad("cert %q: want the identity id of an organisation of this server", r.CERT)
	}
	if r.CERT == p.Organisation {
		return bad("cert: an organisation does not report to itself")
	}
	for _, rc := range r.Recipients {
		if !known(rc) {
			return bad("recipient %q: want the identity id of an organisation of this server", rc)
		}
	}
	for _, ref := range r.Related {
		if !validRef(ref) {
			return bad("related %q: want a STIX id", ref)
		}
	}
	mk, err := marking(r.TLP)
	if err != nil {
		return Regime{}, Properties{}, sharing{}, err
	}
	recips := append([]string{r.CERT}, r.Recipients...)
	slices.Sort(recips)
	props := Properties{ReportingOrganisation: p.Organisation, CERT: r.CERT, Sector: r.Sector, Service: r.Service,
		Severity: r.Severity, Impact: r.Impact, SuspectedCause: r.SuspectedCause, CrossBorder: r.CrossBorder,
		AwareAt: r.AwareAt.UTC(), Regime: regime.Name}
	return regime, props, sharing{marking: mk, recipients: slices.Compact(recips), createdBy: p.Organisation}, nil
}

// visible returns the incident's record and its STIX object when p may
// read the object, else ErrNotFound (the same answer as for a missing
// incident).
func (s *Service) visible(ctx context.Context, p *access.Principal, id string) (*store.IncidentRecord, json.RawMessage, error) {
	rec, err := s.cfg.Store.GetIncident(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	objs, err := s.visibleObjects(ctx, p, rec.Collection, []string{id})
	if err != nil {
		return nil, nil, err
	}
	raw, ok := objs[id]
	if !ok || stix.IsExercise(raw) != s.cfg.Exercise {
		// An exercise incident does not exist for the real service, nor a
		// real one for the drill's.
		return nil, nil, fmt.Errorf("incident %s: %w", id, ErrNotFound)
	}
	return rec, raw, nil
}

// visibleObjects returns, of ids in a collection, the latest version of
// each object p may read (access.Decide).
func (s *Service) visibleObjects(ctx context.Context, p *access.Principal, collection string, ids []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if p == nil {
		return out, nil
	}
	c, err := s.cfg.Objects.GetCollection(ctx, collection)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for chunk := range slices.Chunk(ids, 500) {
		page, err := s.cfg.Objects.QueryObjects(ctx, c.ID, store.Query{IDs: chunk, WithBody: true, Limit: len(chunk),
			Visible: func(e *store.Entry) bool { return access.Decide(p, c, e).Allowed }})
		if err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			out[e.ID] = e.Raw
		}
	}
	return out, nil
}

// Get returns an incident p may see, with its clocks and history.
func (s *Service) Get(ctx context.Context, p *access.Principal, id string) (*Incident, error) {
	rec, raw, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return s.view(ctx, rec, raw, true)
}

// ListFilter selects incidents.
type ListFilter struct {
	State State
	Limit int // 0: 100
}

// List returns the incidents p may see, most recently updated first,
// without their history.
func (s *Service) List(ctx context.Context, p *access.Principal, f ListFilter) ([]*Incident, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	// Visibility is decided after the store's filter: the limit counts
	// visible incidents only, so a listing says nothing of hidden ones.
	recs, err := s.cfg.Store.ListIncidents(ctx, store.IncidentFilter{State: string(f.State), Limit: 100000})
	if err != nil {
		return nil, err
	}
	byColl := map[string][]string{}
	for _, r := range recs {
		byColl[r.Collection] = append(byColl[r.Collection], r.ID)
	}
	seen := map[string]json.RawMessage{}
	for coll, ids := range byColl {
		objs, err := s.visibleObjects(ctx, p, coll, ids)
		if err != nil {
			return nil, err
		}
		for id, raw := range objs {
			seen[id] = raw
		}
	}
	out := []*Incident{}
	for _, r := range recs {
		raw, ok := seen[r.ID]
		if !ok || stix.IsExercise(raw) != s.cfg.Exercise {
			continue
		}
		v, err := s.view(ctx, r, raw, false)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// regimeOf returns the regime an incident was reported under, as it was.
func regimeOf(rec *store.IncidentRecord) (Regime, error) {
	var r Regime
	if err := json.Unmarshal(rec.RegimeDef, &r); err != nil {
		return r, fmt.Errorf("incident %s: regime: %w", rec.ID, err)
	}
	return r, nil
}

func (s *Service) view(ctx context.Context, rec *store.IncidentRecord, raw json.RawMessage, history bool) (*Incident, error) {
	regime, err := regimeOf(rec)
	if err != nil {
		return nil, err
	}
	met, err := s.metStages(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	v := &Incident{ID: rec.ID, Collection: rec.Collection, Name: rec.Name, Regime: rec.Regime, RegimeTitle: regime.Title,
		Reporter: rec.Reporter, CERT: rec.CERT, State: State(rec.State), AwareAt: rec.AwareAt, Reported: rec.Reported,
		Updated: rec.Updated, Object: raw}
	var closed time.Time
	if v.State == StateClosed {
		closed = rec.Updated
	}
	v.Stages = Clocks(regime, rec.AwareAt, rec.Reported, met, s.cfg.Now().UTC(), closed)
	if history {
		if v.History, err = s.cfg.Store.IncidentEvents(ctx, rec.ID); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (s *Service) metStages(ctx context.Context, id string) (map[string]store.StageMet, error) {
	list, err := s.cfg.Store.IncidentStages(ctx, id)
	if err != nil {
		return nil, err
	}
	met := make(map[string]store.StageMet, len(list))
	for _, m := range list {
		met[m.Stage] = m
	}
	return met, nil
}

// party returns p's party in an incident ("" for neither).
func party(p *access.Principal, rec *store.IncidentRecord) string {
	switch {
	case p == nil || p.Organisation == "":
		return ""
	case p.Organisation == rec.Reporter:
		return PartyOperator
	case p.Organisation == rec.CERT:
		return PartyCERT
	}
	return ""
}

// Transition moves an incident to state to. Only the CERT acknowledges;
// either party moves it on; states never go back. The CERT's first step
// out of "reported" meets the stages met "on acknowledge".
func (s *Service) Transition(ctx context.Context, p *access.Principal, id string, to State, note string) (*Incident, error) {
	if to.rank() < 0 {
		return nil, fmt.Errorf("state %q: %w", to, ErrInvalid)
	}
	rec, raw, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	who := party(p, rec)
	if who == "" {
		return nil, fmt.Errorf("only the reporting organisation and its CERT change an incident: %w", ErrForbidden)
	}
	if err := s.mayWrite(ctx, p, rec); err != nil {
		return nil, err
	}
	from := State(rec.State)
	if to.rank() <= from.rank() {
		return nil, fmt.Errorf("incident %s is %s: it cannot become %s (states only move forward): %w", id, from, to, ErrConflict)
	}
	if to == StateAcknowledged && who != PartyCERT {
		return nil, fmt.Errorf("only the CERT acknowledges an incident: %w", ErrForbidden)
	}
	now := s.cfg.Now().UTC()
	regime, err := regimeOf(rec)
	if err != nil {
		return nil, err
	}
	var met []store.StageMet
	if who == PartyCERT && from == StateReported {
		met = stagesOn(regime, OnAcknowledge, id, p, now, "")
	}
	ev := store.IncidentEvent{Incident: id, At: now, User: p.User, Organisation: p.Organisation, Kind: EventTransition,
		From: string(from), To: string(to), Note: note}
	rec.State, rec.Updated = string(to), now
	ds, err := s.deliveries(rec, "incident."+string(to), fmt.Sprintf("Incident %s: %s", to, rec.Name),
		map[string]any{"by": p.Organisation, "from": from, "note": note})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.RecordIncidentStep(ctx, store.IncidentStep{Incident: id, From: string(from), To: string(to), At: now,
		Event: ev, Met: met, Deliveries: ds}); err != nil {
		return nil, err
	}
	s.audit(ctx, p, "incident.transition", rec, fmt.Sprintf("%s -> %s", from, to))
	return s.view(ctx, rec, raw, true)
}

// mayWrite checks that p may write the incident's collection: a step is a
// write (a read-only user or token of a party only reads the incident).
func (s *Service) mayWrite(ctx context.Context, p *access.Principal, rec *store.IncidentRecord) error {
	c, err := s.cfg.Objects.GetCollection(ctx, rec.Collection)
	if err != nil {
		return err
	}
	if _, write := access.CollectionAccess(p, c); !write {
		return fmt.Errorf("no write grant on the incident's collection: %w", ErrForbidden)
	}
	return nil
}

// Acknowledge is the CERT's acknowledgement.
func (s *Service) Acknowledge(ctx context.Context, p *access.Principal, id, note string) (*Incident, error) {
	return s.Transition(ctx, p, id, StateAcknowledged, note)
}

// Close closes an incident; its clocks stop.
func (s *Service) Close(ctx context.Context, p *access.Principal, id, note string) (*Incident, error) {
	return s.Transition(ctx, p, id, StateClosed, note)
}

func stagesOn(r Regime, on, id string, p *access.Principal, at time.Time, ref string) []store.StageMet {
	var out []store.StageMet
	for _, st := range r.Stages {
		if st.On == on {
			out = append(out, store.StageMet{Incident: id, Stage: st.Name, At: at, User: p.User, Organisation: p.Organisation, Ref: ref})
		}
	}
	return out
}

// MeetStage records that p's party met a stage by other means than a
// report (a phone call, a form): only the stage's party meets it.
func (s *Service) MeetStage(ctx context.Context, p *access.Principal, id, stage, note string) (*Incident, error) {
	rec, raw, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, err
	}
	regime, err := regimeOf(rec)
	if err != nil {
		return nil, err
	}
	st, ok := regime.Stage(stage)
	if !ok {
		return nil, fmt.Errorf("stage %q is not a stage of %s: %w", stage, regime.Name, ErrInvalid)
	}
	if party(p, rec) != st.Party {
		return nil, fmt.Errorf("stage %s is met by the %s: %w", stage, st.Party, ErrForbidden)
	}
	if err := s.mayWrite(ctx, p, rec); err != nil {
		return nil, err
	}
	if State(rec.State) == StateClosed {
		return nil, fmt.Errorf("incident %s is closed: %w", id, ErrConflict)
	}
	met, err := s.metStages(ctx, id)
	if err != nil {
		return nil, err
	}
	if m, ok := met[stage]; ok {
		return nil, fmt.Errorf("stage %s was met at %s by %s: %w", stage, m.At.Format(time.RFC3339), m.User, ErrConflict)
	}
	now := s.cfg.Now().UTC()
	rec.Updated = now
	ev := store.IncidentEvent{Incident: id, At: now, User: p.User, Organisation: p.Organisation, Kind: EventStage, Stage: stage, Note: note}
	ds, err := s.deliveries(rec, "stage.met", fmt.Sprintf("Stage met (%s): %s", stage, rec.Name), map[string]any{"by": p.Organisation, "stage": stage})
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.RecordIncidentStep(ctx, store.IncidentStep{Incident: id, At: now, Event: ev,
		Met: []store.StageMet{{Incident: id, Stage: stage, At: now, User: p.User, Organisation: p.Organisation}}, Deliveries: ds}); err != nil {
		return nil, err
	}
	s.audit(ctx, p, "incident.stage", rec, "met "+stage)
	return s.view(ctx, rec, raw, true)
}

// FollowUp is a follow-up report on an incident.
type FollowUp struct {
	Kind string   `json:"kind"` // intermediate, final (the operator's), feedback (the CERT's)
	Name string   `json:"name,omitempty"`
	Text string   `json:"text"`
	Refs []string `json:"refs,omitempty"` // further objects the report refers to
}

// FollowUp publishes a STIX report referring to the incident, marked and
// released like it, and meets the stages met on its kind.
func (s *Service) FollowUp(ctx context.Context, p *access.Principal, id string, f FollowUp) (*Incident, string, error) {
	rec, raw, err := s.visible(ctx, p, id)
	if err != nil {
		return nil, "", err
	}
	if !slices.Contains(FollowUpKinds, f.Kind) {
		return nil, "", fmt.Errorf("kind %q: want one of %s: %w", f.Kind, strings.Join(FollowUpKinds, ", "), ErrInvalid)
	}
	who := party(p, rec)
	want := PartyOperator
	if f.Kind == OnFeedback {
		want = PartyCERT
	}
	if who != want {
		return nil, "", fmt.Errorf("a %s report comes from the %s: %w", f.Kind, want, ErrForbidden)
	}
	for _, ref := range f.Refs {
		if !validRef(ref) {
			return nil, "", fmt.Errorf("ref %q: want a STIX id: %w", ref, ErrInvalid)
		}
	}
	sh, err := sharingOf(raw)
	if err != nil {
		return nil, "", err
	}
	sh.createdBy = p.Organisation
	now := s.cfg.Now().UTC()
	repID, obj, err := followUpObject(id, f.Kind, f.Name, f.Text, f.Refs, sh, now)
	if err != nil {
		return nil, "", err
	}
	pub, err := s.withExerciseMarking(ctx, rec.Collection, sh.exercise, []json.RawMessage{obj})
	if err != nil {
		return nil, "", err
	}
	if err := s.cfg.Publisher.Publish(ctx, p, rec.Collection, pub); err != nil {
		return nil, "", fmt.Errorf("publish report: %w", err)
	}
	regime, err := regimeOf(rec)
	if err != nil {
		return nil, "", err
	}
	met := stagesOn(regime, f.Kind, id, p, now, repID)
	rec.Updated = now
	ev := store.IncidentEvent{Incident: id, At: now, User: p.User, Organisation: p.Organisation, Kind: EventFollowUp, Stage: f.Kind, Ref: repID, Note: f.Name}
	ds, err := s.deliveries(rec, "incident.follow-up", fmt.Sprintf("%s report: %s", f.Kind, rec.Name), map[string]any{"by": p.Organisation, "kind": f.Kind, "report": repID})
	if err != nil {
		return nil, "", err
	}
	if err := s.cfg.Store.RecordIncidentStep(ctx, store.IncidentStep{Incident: id, At: now, Event: ev, Met: met, Deliveries: ds}); err != nil {
		return nil, "", err
	}
	s.audit(ctx, p, "incident.follow-up", rec, f.Kind+" report "+repID)
	v, err := s.view(ctx, rec, raw, true)
	return v, repID, err
}

// sharingOf reads how the incident object is marked and released, for
// the objects that follow it.
func sharingOf(raw json.RawMessage) (sharing, error) {
	var o struct {
		Markings   []string `json:"object_marking_refs"`
		Recipients []string `json:"x_mitra_recipients"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return sharing{}, fmt.Errorf("incident object: %w", err)
	}
	sh := sharing{recipients: o.Recipients, marking: tlpMarkings[access.TLPAmberStrict]}
	for _, m := range o.Markings {
		if m == stix.ExerciseMarkingID {
			sh.exercise = true
		} else {
			sh.marking = m
		}
	}
	return sh, nil
}

// Tick sends the deadline alerts due at the service's clock: a warning
// when a running stage is within its warning time of the deadline and an
// alert when it passes, each once per incident and stage. It returns how
// many alerts it recorded. Servers call it periodically; tests call it
// after moving their clock.
func (s *Service) Tick(ctx context.Context) (int, error) {
	recs, err := s.cfg.Store.ListIncidents(ctx, store.IncidentFilter{Open: true, Limit: 100000})
	if err != nil {
		return 0, err
	}
	mine, err := s.ofThisService(ctx, recs)
	if err != nil {
		return 0, err
	}
	now := s.cfg.Now().UTC()
	n := 0
	for _, rec := range recs {
		if State(rec.State) == StateClosed || !mine[rec.ID] {
			continue
		}
		regime, err := regimeOf(rec)
		if err != nil {
			return n, err
		}
		met, err := s.metStages(ctx, rec.ID)
		if err != nil {
			return n, err
		}
		for _, st := range Clocks(regime, rec.AwareAt, rec.Reported, met, now, time.Time{}) {
			var kind string
			switch {
			case st.Status == StatusOverdue:
				kind = "overdue"
			case st.Status == StatusDue && st.Left <= st.warn():
				kind = "approaching"
			default:
				continue
			}
			ds, err := s.deliveries(rec, "stage."+kind, fmt.Sprintf("Deadline %s (%s, %s): %s", kind, st.Name, st.Party, rec.Name),
				map[string]any{"stage": st.Name, "party": st.Party, "due": st.Due, "left": st.LeftText})
			if err != nil {
				return n, err
			}
			ok, err := s.cfg.Store.ClaimAlert(ctx, store.Alert{Incident: rec.ID, Stage: st.Name, Kind: kind, At: now}, ds)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
	}
	return n, nil
}

// ofThisService says which of the incidents are this service's: exercise
// incidents for a drill service, real ones otherwise (decided on the
// incident objects' markings, whoever may read them).
func (s *Service) ofThisService(ctx context.Context, recs []*store.IncidentRecord) (map[string]bool, error) {
	byColl := map[string][]string{}
	for _, r := range recs {
		byColl[r.Collection] = append(byColl[r.Collection], r.ID)
	}
	out := map[string]bool{}
	for coll, ids := range byColl {
		for chunk := range slices.Chunk(ids, 500) {
			page, err := s.cfg.Objects.QueryObjects(ctx, coll, store.Query{IDs: chunk, WithBody: true, Limit: len(chunk)})
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if err != nil {
				return nil, err
			}
			for _, e := range page.Entries {
				out[e.ID] = stix.IsExercise(e.Raw) == s.cfg.Exercise
			}
		}
	}
	return out, nil
}

// Run calls Tick every interval until ctx ends.
func (s *Service) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Tick(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.cfg.Logger.Error("incident deadlines", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// deliveries are the notifications of one step to every target.
func (s *Service) deliveries(rec *store.IncidentRecord, event, subject string, extra map[string]any) ([]store.Notification, error) {
	data := map[string]any{"incident": rec.ID, "name": rec.Name, "state": rec.State, "regime": rec.Regime,
		"reporter": rec.Reporter, "cert": rec.CERT}
	for k, v := range extra {
		data[k] = v
	}
	ds, err := s.cfg.Targets.Deliveries(notify.Message{Event: event, Subject: subject, Payload: data})
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	for i := range ds {
		notify.Prepare(&ds[i], now)
	}
	return ds, nil
}

func (s *Service) audit(ctx context.Context, p *access.Principal, action string, rec *store.IncidentRecord, detail string) {
	if s.cfg.Audit == nil {
		return
	}
	if err := s.cfg.Audit.AppendAudit(ctx, store.AuditRecord{Principal: p.User, Organisation: p.Organisation, Action: action,
		Path: "incident", Collection: rec.Collection, Objects: []string{rec.ID}, Detail: detail}); err != nil {
		s.cfg.Logger.Error("audit", "action", action, "incident", rec.ID, "err", err)
	}
}
