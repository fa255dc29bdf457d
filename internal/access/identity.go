package access

import (
	"encoding/json"

	"github.com/mitra-cert/mitra/internal/store"
)

// IdentityObject is the STIX 2.1 identity (§4.5) that stands for
// organisation o: the object whose id its objects carry in created_by_ref
// and its sightings in where_sighted_refs.
func IdentityObject(o *store.Organisation) []byte {
	created := o.Created.UTC().Format("2006-01-02T15:04:05.000Z")
	b, _ := json.Marshal(struct {
		Type          string `json:"type"`
		SpecVersion   string `json:"spec_version"`
		ID            string `json:"id"`
		Created       string `json:"created"`
		Modified      string `json:"modified"`
		Name          string `json:"name"`
		IdentityClass string `json:"identity_class"`
	}{"identity", "2.1", o.ID, created, created, o.Name, "organization"}) // plain strings: cannot fail
	return b
}
