package assist

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
)

// DirectoryExtensionID is the point-of-contact extension's
// extension-definition id.
const DirectoryExtensionID = "extension-definition--84f09a0f-2377-4e8e-aa34-d864f332df27"

const directorySchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Mitra point of contact","type":"object",` +
	`"required":["extension_type","country","contact_kind"],"properties":{` +
	`"extension_type":{"const":"property-extension"},` +
	`"country":{"type":"string","pattern":"^[A-Z]{2}$","description":"ISO 3166-1 alpha-2"},` +
	`"organisation_ref":{"type":"string","pattern":"^identity--","description":"the organisation the contact speaks for"},` +
	`"organisation_name":{"type":"string"},` +
	`"contact_kind":{"enum":["diplomatic","technical"]},` +
	`"channels":{"type":"array","items":{"type":"object","required":["type"],"properties":{` +
	`"type":{"enum":["taxii","email","webhook","phone"]},"address":{"type":"string"},"peer":{"type":"string"},"collection":{"type":"string"}}}},` +
	`"working_hours":{"type":"object","properties":{"time_zone":{"type":"string","description":"IANA time zone"},` +
	`"days":{"type":"array","items":{"enum":["mon","tue","wed","thu","fri","sat","sun"]}},"from":{"type":"string","pattern":"^[0-2][0-9]:[0-5][0-9]$"},"to":{"type":"string","pattern":"^[0-2][0-9]:[0-5][0-9]$"}}},` +
	`"escalation_order":{"type":"integer","minimum":0,"description":"lower is asked first; an overdue request escalates to the next"}}}`

// DirectoryExtensionDefinition is the point-of-contact extension-definition object.
var DirectoryExtensionDefinition = json.RawMessage(`{"type":"extension-definition","spec_version":"2.1","id":"` + DirectoryExtensionID + `",` +
	`"created_by_ref":"` + MitraIdentityID + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
	`"name":"Mitra point of contact","description":"A national point of contact for cyber incidents: country, organisation, diplomatic or technical, channels and working hours, on a STIX identity.",` +
	`"schema":` + jsonString(directorySchema) + `,"version":"1.0.0","extension_types":["property-extension"]}`)

// Channel types.
const (
	ChannelTAXII   = "taxii"
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
	ChannelPhone   = "phone"
)

// Channel is one way to reach a contact. A TAXII channel names the local
// federation peer of the contact's server and the collection there that
// takes assistance notes.
type Channel struct {
	Type       string `json:"type"`
	Address    string `json:"address,omitempty"`
	Peer       string `json:"peer,omitempty"`
	Collection string `json:"collection,omitempty"`
}

// WorkingHours are when a contact is staffed, in its time zone.
type WorkingHours struct {
	TimeZone string   `json:"time_zone,omitempty"`
	Days     []string `json:"days,omitempty"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
}

// Contact is a directory entry.
type Contact struct {
	// ID is the identity id (generated when empty).
	ID               string       `json:"id"`
	Name             string       `json:"name"`
	Country          string       `json:"country"`
	Organisation     string       `json:"organisation,omitempty"`
	OrganisationName string       `json:"organisation_name,omitempty"`
	Kind             string       `json:"kind"`
	Roles            []string     `json:"roles,omitempty"`
	Channels         []Channel    `json:"channels,omitempty"`
	Hours            WorkingHours `json:"working_hours,omitzero"`
	EscalationOrder  int          `json:"escalation_order"`
	// TLP of the entry (empty: the collection's default).
	TLP string `json:"tlp,omitempty"`
	// Modified is the entry's version (read back only).
	Modified time.Time `json:"modified,omitzero"`
	// Exercise marks a drill's entry (read back only).
	Exercise bool `json:"exercise,omitempty"`
}

type contactExt struct {
	ExtensionType    string       `json:"extension_type"`
	Country          string       `json:"country"`
	OrganisationRef  string       `json:"organisation_ref,omitempty"`
	OrganisationName string       `json:"organisation_name,omitempty"`
	Kind             string       `json:"contact_kind"`
	Channels         []Channel    `json:"channels,omitempty"`
	Hours            WorkingHours `json:"working_hours,omitzero"`
	EscalationOrder  int          `json:"escalation_order"`
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Check validates c.
func (c *Contact) Check() error {
	bad := func(f string, a ...any) error { return fmt.Errorf(f+": %w", append(a, ErrInvalid)...) }
	if strings.TrimSpace(c.Name) == "" {
		return bad("a contact needs a name")
	}
	c.Country = strings.ToUpper(strings.TrimSpace(c.Country))
	if len(c.Country) != 2 || c.Country[0] < 'A' || c.Country[0] > 'Z' || c.Country[1] < 'A' || c.Country[1] > 'Z' {
		return bad("country %q: want an ISO 3166-1 alpha-2 code", c.Country)
	}
	if c.Kind != "diplomatic" && c.Kind != "technical" {
		return bad("kind %q: want diplomatic or technical", c.Kind)
	}
	if c.ID != "" && (!strings.HasPrefix(c.ID, "identity--") || uuid.Validate(strings.TrimPrefix(c.ID, "identity--")) != nil) {
		return bad("id %q: want identity--UUID", c.ID)
	}
	if c.Organisation != "" && !strings.HasPrefix(c.Organisation, "identity--") {
		return bad("organisation %q: want an identity id", c.Organisation)
	}
	for _, ch := range c.Channels {
		switch ch.Type {
		case ChannelTAXII:
			if ch.Peer == "" || ch.Collection == "" {
				return bad("a taxii channel names a peer and a collection")
			}
		case ChannelEmail, ChannelWebhook, ChannelPhone:
			if ch.Address == "" {
				return bad("a %s channel needs an address", ch.Type)
			}
		default:
			return bad("channel type %q: want taxii, email, webhook or phone", ch.Type)
		}
	}
	if h := c.Hours; h.TimeZone != "" {
		if _, err := time.LoadLocation(h.TimeZone); err != nil {
			return bad("time zone %q: %v", h.TimeZone, err)
		}
	}
	for _, d := range c.Hours.Days {
		if !slices.Contains(weekdays, d) {
			return bad("working day %q: want mon..sun", d)
		}
	}
	for _, t := range []string{c.Hours.From, c.Hours.To} {
		if t != "" {
			if _, err := time.Parse("15:04", t); err != nil {
				return bad("working hours %q: want HH:MM", t)
			}
		}
	}
	if c.TLP != "" {
		if _, err := access.ParseTLP(c.TLP); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// Staffed reports whether the contact works at t (always, without working
// hours).
func (c *Contact) Staffed(t time.Time) bool {
	h := c.Hours
	loc := time.UTC
	if h.TimeZone != "" {
		if l, err := time.LoadLocation(h.TimeZone); err == nil {
			loc = l
		}
	}
	lt := t.In(loc)
	if len(h.Days) > 0 && !slices.Contains(h.Days, weekdays[lt.Weekday()]) {
		return false
	}
	if h.From == "" || h.To == "" {
		return true
	}
	hm := lt.Format("15:04")
	return hm >= h.From && hm < h.To
}

// TAXII returns the contact's TAXII channel.
func (c *Contact) TAXII() (Channel, bool) {
	for _, ch := range c.Channels {
		if ch.Type == ChannelTAXII {
			return ch, true
		}
	}
	return Channel{}, false
}

// identity renders c as a STIX identity at now.
func (c *Contact) identity(now time.Time, exercise bool) ([]byte, error) {
	if c.ID == "" {
		c.ID = "identity--" + uuid.NewString()
	}
	var info []string
	for _, ch := range c.Channels {
		switch ch.Type {
		case ChannelTAXII:
			info = append(info, "TAXII: peer "+ch.Peer+", collection "+ch.Collection)
		default:
			info = append(info, ch.Type+": "+ch.Address)
		}
	}
	obj := map[string]any{
		"type": "identity", "spec_version": "2.1", "id": c.ID, "created": timestamp(now), "modified": timestamp(now),
		"name": c.Name, "identity_class": "individual",
		"description": fmt.Sprintf("%s point of contact of %s (%s)", c.Kind, orDash(c.OrganisationName), c.Country),
		"extensions": map[string]any{DirectoryExtensionID: contactExt{ExtensionType: "property-extension", Country: c.Country,
			OrganisationRef: c.Organisation, OrganisationName: c.OrganisationName, Kind: c.Kind, Channels: c.Channels, Hours: c.Hours,
			EscalationOrder: c.EscalationOrder}},
	}
	if len(c.Roles) > 0 {
		obj["roles"] = c.Roles
	}
	if len(info) > 0 {
		obj["contact_information"] = strings.Join(info, "; ")
	}
	var markings []string
	if c.TLP != "" {
		level, _ := access.ParseTLP(c.TLP)
		markings = append(markings, tlpMarkings[level])
	}
	if exercise {
		markings = append(markings, stix.ExerciseMarkingID)
	}
	if len(markings) > 0 {
		obj["object_marking_refs"] = markings
	}
	return json.Marshal(obj)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseContact reads an identity of the directory extension.
func parseContact(raw []byte) (Contact, bool) {
	var o struct {
		Type              string                     `json:"type"`
		ID                string                     `json:"id"`
		Name              string                     `json:"name"`
		Modified          string                     `json:"modified"`
		Roles             []string                   `json:"roles"`
		ObjectMarkingRefs []string                   `json:"object_marking_refs"`
		Extensions        map[string]json.RawMessage `json:"extensions"`
	}
	if json.Unmarshal(raw, &o) != nil || o.Type != "identity" {
		return Contact{}, false
	}
	x, ok := o.Extensions[DirectoryExtensionID]
	if !ok {
		return Contact{}, false
	}
	var e contactExt
	if json.Unmarshal(x, &e) != nil {
		return Contact{}, false
	}
	mod, _ := stix.ParseTimestamp(o.Modified)
	return Contact{ID: o.ID, Name: o.Name, Country: e.Country, Organisation: e.OrganisationRef, OrganisationName: e.OrganisationName,
		Kind: e.Kind, Roles: o.Roles, Channels: e.Channels, Hours: e.Hours, EscalationOrder: e.EscalationOrder,
		TLP: tlpName(o.ObjectMarkingRefs), Modified: mod, Exercise: stix.IsExercise(raw)}, true
}
