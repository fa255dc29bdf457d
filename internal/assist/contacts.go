package assist

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// AddContact stores (or, with an existing id, versions) a directory entry
// as p, through the TAXII ingest checks.
func (s *Service) AddContact(ctx context.Context, p *access.Principal, c Contact) (*Contact, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	col, err := s.collection(ctx, s.cfg.Directory)
	if err != nil {
		return nil, err
	}
	raw, err := c.identity(s.now(), s.cfg.Exercise)
	if err != nil {
		return nil, err
	}
	if err := s.write(ctx, p, col, true, raw); err != nil {
		return nil, err
	}
	return s.contact(ctx, p, c.ID)
}

// Contacts lists the directory entries p may see (p nil: all), by
// country, organisation, escalation order and name.
func (s *Service) Contacts(ctx context.Context, p *access.Principal) ([]Contact, error) {
	col, err := s.collection(ctx, s.cfg.Directory)
	if err != nil {
		return nil, err
	}
	entries, err := s.scan(ctx, col, "identity", visibleTo(p, col))
	if err != nil {
		return nil, err
	}
	var out []Contact
	for i := range entries {
		if c, ok := parseContact(entries[i].Raw); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Contact) int {
		return cmp.Or(cmp.Compare(a.Country, b.Country), cmp.Compare(a.OrganisationName, b.OrganisationName), cmp.Compare(a.Organisation, b.Organisation),
			cmp.Compare(a.EscalationOrder, b.EscalationOrder), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// contact finds one entry p may see.
func (s *Service) contact(ctx context.Context, p *access.Principal, id string) (*Contact, error) {
	all, err := s.Contacts(ctx, p)
	if err != nil {
		return nil, err
	}
	for i := range all {
		if all[i].ID == id {
			return &all[i], nil
		}
	}
	return nil, fmt.Errorf("contact %s: %w", id, ErrNotFound)
}

// Escalation outcomes of nextContact.
const (
	escalateTo  = iota // next is the contact to escalate to
	noneLeft           // no further contact in the directory
	noneStaffed        // further contacts exist, none staffed now
)

// nextContact is the contact an overdue request escalates to at now: the
// first contact after the current one, in escalation order, among the
// contacts of the same organisation (else of the same country), who is
// staffed at now by its working hours in its own time zone
// (Contact.Staffed). Contacts off duty are passed over: an escalation to
// an empty desk would only start another clock nobody watches. When every
// further contact is off duty the request waits (noneStaffed) and
// escalates at the first tick one of them is on duty; when there is no
// further contact at all it is overdue for good (noneLeft).
func nextContact(all []Contact, current, organisation string, now time.Time) (Contact, int) {
	var cur *Contact
	for i := range all {
		if all[i].ID == current {
			cur = &all[i]
		}
	}
	same := func(c *Contact) bool {
		switch {
		case organisation != "":
			return c.Organisation == organisation
		case cur != nil && cur.Organisation != "":
			return c.Organisation == cur.Organisation
		case cur != nil:
			return c.Country == cur.Country
		}
		return false
	}
	var group []Contact
	for i := range all {
		if same(&all[i]) {
			group = append(group, all[i])
		}
	}
	// all is sorted by escalation order then name: the contacts after the
	// current one's position (all of them when it left the directory).
	later := group
	if i := slices.IndexFunc(group, func(c Contact) bool { return c.ID == current }); i >= 0 {
		later = group[i+1:]
	}
	if len(later) == 0 {
		return Contact{}, noneLeft
	}
	for _, c := range later {
		if c.Staffed(now) {
			return c, escalateTo
		}
	}
	return Contact{}, noneStaffed
}

// route resolves a delivery's route to a peer and its collection.
func (s *Service) route(ctx context.Context, d *store.Delivery, contacts func() ([]Contact, error)) (peer, remote string, err error) {
	kind, target, _ := cutRoute(d.Route)
	switch kind {
	case "peer":
		return target, d.RemoteCollection, nil
	case "org":
		peers, err := s.cfg.Store.ListPeers(ctx)
		if err != nil {
			return "", "", err
		}
		for _, p := range peers {
			if p.Organisation == target {
				return p.Name, d.RemoteCollection, nil
			}
		}
		return "", "", fmt.Errorf("no federation peer of organisation %s", target)
	case "contact":
		all, err := contacts()
		if err != nil {
			return "", "", err
		}
		for _, c := range all {
			if c.ID == target {
				ch, ok := c.TAXII()
				if !ok {
					return "", "", fmt.Errorf("contact %s has no TAXII channel", target)
				}
				return ch.Peer, ch.Collection, nil
			}
		}
		return "", "", fmt.Errorf("unknown contact %s (not in the directory)", target)
	}
	return "", "", fmt.Errorf("bad route %q", d.Route)
}

func cutRoute(r string) (kind, target string, ok bool) {
	for i := 0; i < len(r); i++ {
		if r[i] == ':' {
			return r[:i], r[i+1:], true
		}
	}
	return r, "", false
}
