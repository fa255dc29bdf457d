package access

import (
	"bytes"
	"slices"

	"github.com/mitra-cert/mitra/internal/store"
)

// Decision is the answer of the policy, with the path that allows (or the
// reason that forbids) the access, for the audit log and for tests.
type Decision struct {
	Allowed bool
	Path    string
}

// Decide answers "may principal p see object version e of collection c,
// and through which path". It is Mitra's one visibility decision: every
// read path (TAXII objects, object, versions, manifest; exports; the
// detector's indicator set; federation push) asks it.
//
// The rules (FIRST TLP 2.0 as Mitra applies it):
//   - no read grant on the collection (to the user, its organisation or a
//     sharing group of its organisation): nothing is visible;
//   - the object's strictest TLP marking counts (object_marking_refs and
//     granular_markings alike; no redaction), else the collection's default;
//   - CLEAR, GREEN, AMBER: every reader of the collection (its audience);
//   - AMBER+STRICT and RED: only the organisation that submitted the object
//     (recorded by the server) and organisations named as recipients, in
//     the object (x_mitra_recipients) or in the collection's recipient
//     list; never through a grant to a group or to another organisation.
//   - a marking the server could not resolve when the object was stored
//     (TLPUnresolved): only the submitting organisation.
func Decide(p *Principal, c *store.Collection, e *store.Entry) Decision {
	read, _, via := collectionAccess(p, c)
	if !read {
		return Decision{Path: "no read grant on the collection"}
	}
	level := EffectiveTLP(c, e)
	switch {
	case level == TLPUnresolved:
		// An unknown marking may mean anything: only its author reads it.
		if p.Organisation != "" && p.Organisation == e.Submitter {
			return Decision{Allowed: true, Path: level.String() + " via submitting organisation"}
		}
		return Decision{Path: level.String() + ": only the submitting organisation reads it"}
	case level <= TLPAmber:
		return Decision{Allowed: true, Path: level.String() + " via " + via}
	case p.Organisation != "" && p.Organisation == e.Submitter:
		return Decision{Allowed: true, Path: level.String() + " via submitting organisation"}
	case slices.Contains(e.Recipients, p.Organisation):
		return Decision{Allowed: true, Path: level.String() + " via recipient named in the object"}
	case slices.Contains(c.Recipients, p.Organisation):
		return Decision{Allowed: true, Path: level.String() + " via recipient named by the collection"}
	}
	return Decision{Path: level.String() + ": not the submitter nor a named recipient"}
}

// EffectiveTLP is the level that governs e in c: its own strictest marking,
// else the collection's default (AMBER when the collection sets none).
func EffectiveTLP(c *store.Collection, e *store.Entry) TLP {
	if t := TLP(e.TLP); t != TLPUnmarked {
		return t
	}
	if t := TLP(c.DefaultTLP); t != TLPUnmarked {
		return t
	}
	return TLPAmber
}

// AnonymousIdentity replaces the identity of an organisation that asked to
// stay anonymous in its sightings.
const AnonymousIdentity = "identity--00000000-0000-4000-8000-000000000000"

// RedactSighting hides, in a sighting read by p, the identities of the
// organisations in anonymous (those with AnonymiseSightings) other than p's
// own: in where_sighted_refs, created_by_ref and anywhere else they appear.
// Identity ids are unique strings, so replacing them keeps the rest of the
// object byte for byte. Other objects are returned unchanged.
func RedactSighting(p *Principal, e *store.Entry, anonymous []string) []byte {
	if e.Type != "sighting" {
		return e.Raw
	}
	out := e.Raw
	for _, org := range anonymous {
		if org == p.Organisation || !bytes.Contains(out, []byte(org)) {
			continue
		}
		out = bytes.ReplaceAll(out, []byte(`"`+org+`"`), []byte(`"`+AnonymousIdentity+`"`))
	}
	return out
}
