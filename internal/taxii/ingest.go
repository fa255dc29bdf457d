package taxii

import (
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

// Check validates raws and applies the ownership rules for p exactly as a
// TAXII POST does, for other ingest paths (a federation pull stores what
// it reads through this, in its own transactions).
func (s *Server) Check(p *access.Principal, raws []json.RawMessage) Checked {
	var out Checked
	for chunk := range s.check(p, raws) {
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
	return out
}
