package taxii

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/store"
)

// Checked is what the POST path decides about objects before it stores
// them: the objects to store (submitter, TLP, recipients and owner set for
// p), the refused ones with their reasons, and the ids of those p relays
// for another organisation (to audit).
type Checked struct {
	Objects  []store.Object
	Failures []store.StatusDetail
	Relayed  []string
}

// Check validates raws and applies the ownership and marking rules for p
// exactly as a TAXII POST does, for other ingest paths (a federation pull
// stores what it reads through this, in its own transactions).
func (s *Server) Check(ctx context.Context, p *access.Principal, raws []json.RawMessage) (Checked, error) {
	var out Checked
	// Marking definitions are resolved across the whole page, as across a
	// POST's envelope.
	var body bytes.Buffer
	for _, raw := range raws {
		body.Write(raw)
		body.WriteByte(',')
	}
	markings, err := s.resolveMarkings(ctx, body.Bytes(), raws)
	if err != nil {
		return out, err
	}
	orgs, err := s.organisations(ctx)
	if err != nil {
		return out, err
	}
	for chunk := range s.check(p, raws, markings, orgs) {
		for _, ch := range chunk {
			if ch.failure != nil {
				out.Failures = append(out.Failures, *ch.failure)
				continue
			}
			out.Objects = append(out.Objects, ch.obj)
			if ch.relayed {
				out.Relayed = append(out.Relayed, ch.obj.ID)
			}
		}
	}
	return out, nil
}
