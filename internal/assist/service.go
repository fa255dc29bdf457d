package assist

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// Sender hands objects to a federation peer's collection and returns once
// the peer took them (its TAXII status completed without failures).
type Sender interface {
	Send(ctx context.Context, peer, remoteCollection string, objs []json.RawMessage) error
}

// Notifier sends a message over a contact's e-mail or webhook channel.
type Notifier interface {
	Notify(ctx context.Context, ch Channel, subject, body string) error
}

// Config configures a Service.
type Config struct {
	Store Store
	// Check is the TAXII POST path's checks (taxii.Server.Check): every
	// note and directory entry is stored through it.
	Check func(ctx context.Context, p *access.Principal, raws []json.RawMessage) (taxii.Checked, error)
	// Collection (id or alias) holds the requests and their steps, sent and
	// received; Directory holds the points of contact.
	Collection string
	Directory  string
	Sender     Sender
	Notifier   Notifier
	// Exercise marks everything the service writes as exercise data (a
	// drill's service, over the drill's own collections).
	Exercise bool
	Now      func() time.Time
	Log      *slog.Logger
	// PingKey signs the answer links of reachability challenges;
	// PublicURL is the server's address in them.
	PingKey   []byte
	PublicURL string
	// PocPrefix is where the answer links point (PocPrefix when empty).
	PocPrefix string
}

// Service raises and answers assistance requests, escalates overdue ones
// and delivers their notes.
type Service struct {
	cfg Config
	// holder names this service in the clock's lease.
	holder string
}

// New returns a service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PocPrefix == "" {
		cfg.PocPrefix = PocPrefix
	}
	return &Service{cfg: cfg, holder: "assist-" + randomHex(8)}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Step is one note of a request's history.
type Step struct {
	ID         string `json:"id"`
	Message    string `json:"message"`
	Author     string `json:"author,omitempty"`
	AuthorName string `json:"author_name,omitempty"`
	// Contact is the new contact of an escalation.
	Contact string `json:"contact,omitempty"`
	Content string `json:"content,omitempty"`
	// Created is the author's time; Received the local server's.
	Created  time.Time `json:"created"`
	Received time.Time `json:"received"`
}

// Request is a request with its history, as the caller sees it.
type Request struct {
	ID                  string        `json:"id"`
	Kind                string        `json:"kind"`
	Abstract            string        `json:"abstract,omitempty"`
	Content             string        `json:"content,omitempty"`
	TLP                 string        `json:"tlp,omitempty"`
	Concerns            []string      `json:"concerns"`
	Requester           string        `json:"requester"`
	RequesterName       string        `json:"requester_name,omitempty"`
	FirstContact        string        `json:"first_contact"`
	Contact             string        `json:"contact"`
	ContactOrganisation string        `json:"contact_organisation,omitempty"`
	ResponseTime        time.Duration `json:"response_time_ns"`
	Created             time.Time     `json:"created"`
	Received            time.Time     `json:"received"`
	Due                 time.Time     `json:"due"`
	State               string        `json:"state"`
	Overdue             bool          `json:"overdue"`
	Escalations         int           `json:"escalations"`
	Acknowledged        time.Time     `json:"acknowledged,omitzero"`
	Responded           time.Time     `json:"responded,omitzero"`
	// Incoming is true on the server that received the request.
	Incoming   bool             `json:"incoming"`
	Exercise   bool             `json:"exercise,omitempty"`
	Steps      []Step           `json:"steps"`
	Deliveries []store.Delivery `json:"deliveries,omitempty"`

	replyCollection string
	submitter       string
	recipients      []string
}

var states = map[string]string{
	MsgRequest: "sent", MsgAcknowledge: "acknowledged", MsgMoreInformation: "more-information-asked", MsgInformation: "information-given",
	MsgAnswer: "answered", MsgAccept: "accepted", MsgDecline: "declined", MsgEscalate: "escalated",
}

// collection resolves a configured collection.
func (s *Service) collection(ctx context.Context, name string) (*store.Collection, error) {
	if name == "" {
		return nil, fmt.Errorf("no collection configured: %w", ErrNotFound)
	}
	c, err := s.cfg.Store.GetCollection(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("collection %s does not exist (create it with mitra collection create --alias %s): %w", name, name, ErrNotFound)
	}
	return c, err
}

// visibleTo is the access decision of p on c, or everything when p is nil
// (the server's own clock and deliveries).
func visibleTo(p *access.Principal, c *store.Collection) func(*store.Entry) bool {
	if p == nil {
		return nil
	}
	return func(e *store.Entry) bool { return access.Decide(p, c, e).Allowed }
}

// scan reads every latest object of the given type in c that visible lets
// through.
func (s *Service) scan(ctx context.Context, c *store.Collection, typ string, visible func(*store.Entry) bool) ([]store.Entry, error) {
	var out []store.Entry
	var after time.Time
	for {
		page, err := s.cfg.Store.QueryObjects(ctx, c.ID, store.Query{AddedAfter: after, Limit: 1000, Types: []string{typ}, WithBody: true, Visible: visible})
		if err != nil {
			return nil, err
		}
		out = append(out, page.Entries...)
		if len(page.Entries) == 0 || !page.More {
			return out, nil
		}
		after = page.Entries[len(page.Entries)-1].DateAdded
	}
}

// requests folds the notes p may see into requests (p nil: all).
func (s *Service) requests(ctx context.Context, p *access.Principal) ([]*Request, *store.Collection, error) {
	c, err := s.collection(ctx, s.cfg.Collection)
	if err != nil {
		return nil, nil, err
	}
	entries, err := s.scan(ctx, c, "note", visibleTo(p, c))
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]*Request{}
	type stepOf struct {
		req  string
		step Step
	}
	var steps []stepOf
	for i := range entries {
		e := &entries[i]
		n, ok := parseNote(e.Raw)
		if !ok {
			continue
		}
		if n.Ext.Message == MsgRequest {
			byID[n.ID] = &Request{ID: n.ID, Kind: n.Ext.Kind, Abstract: n.Abstract, Content: n.Content, TLP: tlpName(n.Markings),
				Concerns: n.Refs, Requester: n.Ext.RequesterRef, RequesterName: n.Ext.RequesterName, FirstContact: n.Ext.ContactRef,
				Contact: n.Ext.ContactRef, ContactOrganisation: n.Ext.ContactOrganisationRef,
				ResponseTime: time.Duration(n.Ext.ResponseSeconds) * time.Second, Created: n.Created, Received: e.DateAdded,
				Incoming: e.Submitter != n.Ext.RequesterRef, Exercise: stix.IsExercise(e.Raw),
				replyCollection: n.Ext.ReplyCollection, submitter: e.Submitter, recipients: e.Recipients}
			continue
		}
		steps = append(steps, stepOf{n.Ext.RequestRef, Step{ID: n.ID, Message: n.Ext.Message, Author: n.Ext.AuthorRef, AuthorName: n.Ext.AuthorName,
			Contact: n.Ext.ContactRef, Content: n.Content, Created: n.Created, Received: e.DateAdded}})
	}
	// A step whose request is hidden or missing is not shown: it would
	// tell that the request exists.
	for _, st := range steps {
		if r, ok := byID[st.req]; ok {
			r.Steps = append(r.Steps, st.step)
		}
	}
	now := s.now()
	out := make([]*Request, 0, len(byID))
	for _, r := range byID {
		slices.SortFunc(r.Steps, func(a, b Step) int { return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID)) })
		r.fold(now)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Request) int { return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(a.ID, b.ID)) })
	return out, c, nil
}

// fold derives the state, the clock and the current contact from the steps.
func (r *Request) fold(now time.Time) {
	r.State = states[MsgRequest]
	clock := r.Created
	for _, st := range r.Steps {
		r.State = states[st.Message]
		switch {
		case st.Message == MsgEscalate:
			r.Escalations++
			r.Contact = st.Contact
			clock = st.Created
		case st.Message == MsgAcknowledge && r.Acknowledged.IsZero():
			r.Acknowledged = st.Created
		case responds(st.Message) && r.Responded.IsZero():
			r.Responded = st.Created
		}
	}
	if r.ResponseTime > 0 {
		r.Due = clock.Add(r.ResponseTime)
	}
	r.Overdue = r.Responded.IsZero() && !r.Due.IsZero() && !now.Before(r.Due)
}

// List returns the requests p may see, newest first.
func (s *Service) List(ctx context.Context, p *access.Principal) ([]*Request, error) {
	out, _, err := s.requests(ctx, p)
	return out, err
}

// Get returns one request p may see, with its deliveries.
func (s *Service) Get(ctx context.Context, p *access.Principal, id string) (*Request, error) {
	all, _, err := s.requests(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, r := range all {
		if r.ID == id {
			if r.Deliveries, err = s.cfg.Store.Deliveries(ctx, r.ID); err != nil {
				return nil, err
			}
			return r, nil
		}
	}
	return nil, fmt.Errorf("request %s: %w", id, ErrNotFound)
}

// RaiseInput is a new request.
type RaiseInput struct {
	// Contact is the point of contact addressed (an identity id; one not in
	// the directory yet is kept and delivered once it is).
	Contact      string        `json:"contact"`
	Kind         string        `json:"kind"`
	Concerns     []string      `json:"concerns"`
	TLP          string        `json:"tlp"`
	ResponseTime time.Duration `json:"-"`
	Abstract     string        `json:"abstract"`
	Content      string        `json:"content"`
}

// Raise stores a request of p's organisation and queues its delivery.
func (s *Service) Raise(ctx context.Context, p *access.Principal, in RaiseInput) (*Request, error) {
	if err := validKind(in.Kind); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(in.Contact, "identity--") {
		return nil, fmt.Errorf("contact %q: want an identity id: %w", in.Contact, ErrInvalid)
	}
	if in.ResponseTime < time.Minute {
		return nil, fmt.Errorf("requested response time %s: want at least a minute: %w", in.ResponseTime, ErrInvalid)
	}
	if len(in.Concerns) == 0 {
		return nil, fmt.Errorf("a request concerns at least one object (an incident, indicators): %w", ErrInvalid)
	}
	for _, id := range in.Concerns {
		if !strings.Contains(id, "--") {
			return nil, fmt.Errorf("concerns %q: want STIX ids: %w", id, ErrInvalid)
		}
	}
	level := access.TLPAmber
	if in.TLP != "" {
		var err error
		if level, err = access.ParseTLP(in.TLP); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrInvalid)
		}
	}
	if p == nil || p.Organisation == "" {
		return nil, fmt.Errorf("the caller has no organisation: %w", ErrForbidden)
	}
	org, err := s.cfg.Store.GetOrganisation(ctx, p.Organisation)
	if err != nil {
		return nil, err
	}
	col, err := s.collection(ctx, s.cfg.Collection)
	if err != nil {
		return nil, err
	}
	e := ext{Message: MsgRequest, Kind: in.Kind, RequesterRef: org.ID, RequesterName: org.Name, ContactRef: in.Contact,
		ResponseSeconds: int64(in.ResponseTime / time.Second), ReplyCollection: col.ID}
	recipients := []string{org.ID}
	if c, err := s.contact(ctx, nil, in.Contact); err == nil && c.Organisation != "" {
		e.ContactOrganisationRef = c.Organisation
		recipients = append(recipients, c.Organisation)
	}
	abstract := in.Abstract
	if abstract == "" {
		abstract = "Assistance request (" + in.Kind + ") from " + org.Name
	}
	raw, id, err := newNote(s.now(), abstract, in.Content, in.Concerns, level, recipients, s.cfg.Exercise, e)
	if err != nil {
		return nil, err
	}
	if err := s.write(ctx, p, col, true, raw); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.EnqueueDelivery(ctx, &store.Delivery{Label: id, Collection: col.ID, Objects: []string{id}, Route: "contact:" + in.Contact, NextAttempt: s.now()}); err != nil {
		return nil, fmt.Errorf("request %s stored, its delivery not queued: %w", id, err)
	}
	return s.Get(ctx, p, id)
}

// AddStep records a step of p's organisation on a request it sees and
// queues its delivery to the other side.
func (s *Service) AddStep(ctx context.Context, p *access.Principal, requestID, message, content string) (*Request, error) {
	r, err := s.Get(ctx, p, requestID)
	if err != nil {
		return nil, err
	}
	if p.Organisation == "" {
		return nil, fmt.Errorf("the caller has no organisation: %w", ErrForbidden)
	}
	requester := !r.Incoming && p.Organisation == r.Requester
	switch {
	case !r.Incoming && !requester:
		// Only the requesting organisation speaks on the request it sent;
		// the receiver's steps come from the receiver's server.
		return nil, fmt.Errorf("only the requesting organisation adds steps to a request it sent: %w", ErrForbidden)
	case requester && message != MsgInformation:
		return nil, fmt.Errorf("the requesting organisation adds information only (its server escalates): %w", ErrForbidden)
	case !requester && !slices.Contains(receiverMessages, message):
		return nil, fmt.Errorf("message %q: want one of %v: %w", message, receiverMessages, ErrInvalid)
	}
	org, err := s.cfg.Store.GetOrganisation(ctx, p.Organisation)
	if err != nil {
		return nil, err
	}
	col, err := s.collection(ctx, s.cfg.Collection)
	if err != nil {
		return nil, err
	}
	level, _ := access.ParseTLP(r.TLP)
	recipients := append(slices.Clone(r.recipients), r.Requester, org.ID)
	raw, id, err := newNote(s.now(), states[message]+": "+r.ID, content, []string{r.ID}, level, recipients, s.cfg.Exercise,
		ext{Message: message, RequestRef: r.ID, AuthorRef: org.ID, AuthorName: org.Name})
	if err != nil {
		return nil, err
	}
	if err := s.write(ctx, p, col, true, raw); err != nil {
		return nil, err
	}
	d := &store.Delivery{Label: r.ID, Collection: col.ID, Objects: []string{id}, NextAttempt: s.now()}
	if requester {
		d.Route = "contact:" + r.Contact
	} else {
		// Back to the server the request came from: the peer of the
		// organisation that submitted it here, into its reply collection.
		d.Route, d.RemoteCollection = "org:"+r.submitter, r.replyCollection
	}
	if err := s.cfg.Store.EnqueueDelivery(ctx, d); err != nil {
		return nil, fmt.Errorf("step %s stored, its delivery not queued: %w", id, err)
	}
	return s.Get(ctx, p, r.ID)
}

// write stores raws in c through the TAXII ingest checks as p (write
// access asked when checkWrite), with an audit record.
func (s *Service) write(ctx context.Context, p *access.Principal, c *store.Collection, checkWrite bool, raws ...[]byte) error {
	if checkWrite {
		if read, write := access.CollectionAccess(p, c); !write {
			if !read {
				return fmt.Errorf("collection %s: %w", c.ID, ErrNotFound)
			}
			return fmt.Errorf("collection %s: organisation %s may not write to it: %w", c.ID, p.Organisation, ErrForbidden)
		}
	}
	rs := make([]json.RawMessage, len(raws))
	ids := make([]string, len(raws))
	for i, r := range raws {
		rs[i] = r
	}
	if s.cfg.Exercise {
		rs = append(rs, stix.ExerciseMarking)
	}
	checked, err := s.cfg.Check(ctx, p, rs)
	if err != nil {
		return err
	}
	if len(checked.Failures) > 0 {
		f := checked.Failures[0]
		return fmt.Errorf("%s refused: %s: %w", f.ID, f.Message, ErrInvalid)
	}
	res, err := s.cfg.Store.AddObjects(ctx, c.ID, checked.Objects, nil)
	if err != nil {
		return err
	}
	for i, r := range res {
		if r.Err != nil {
			return fmt.Errorf("%s refused: %w", checked.Objects[i].ID, r.Err)
		}
	}
	for i := range raws {
		ids[i] = checked.Objects[i].ID
	}
	return s.cfg.Store.AppendAudit(ctx, store.AuditRecord{Principal: p.User, Organisation: p.Organisation, Action: "assist.write",
		Path: "assist", Collection: c.ID, Objects: ids})
}
