package assist

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
)

// Errors mapped to HTTP statuses by the handler.
var (
	// ErrInvalid marks bad input (400).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such request, contact or challenge, or one the caller
	// may not see (404: a hidden object is indistinguishable from a missing one).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller sees the request but may not do this (403).
	ErrForbidden = errors.New("forbidden")
)

// ExtensionID is the assistance extension's extension-definition id.
const ExtensionID = "extension-definition--0f020dad-a712-47f6-94aa-aaf0871db108"

// MitraIdentityID is the identity that publishes Mitra's extension
// definitions (their created_by_ref, required by STIX 2.1 §7.3).
const MitraIdentityID = "identity--ab4a734a-ff5f-4a7e-8cd5-ff716a2e2eeb"

// MitraIdentity is the identity object of MitraIdentityID.
var MitraIdentity = json.RawMessage(`{"type":"identity","spec_version":"2.1","id":"` + MitraIdentityID + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","name":"Mitra project","identity_class":"organization"}`)

// Kinds of assistance a request asks for.
var Kinds = []string{"information", "analysis", "takedown", "blocking", "coordination"}

// Messages: what a note of the extension is.
const (
	MsgRequest         = "request"
	MsgAcknowledge     = "acknowledge"
	MsgAnswer          = "answer"
	MsgMoreInformation = "more-information"
	MsgInformation     = "information" // the requester's reply to more-information
	MsgAccept          = "accept"
	MsgDecline         = "decline"
	MsgEscalate        = "escalate"
)

// receiverMessages are the steps the receiving side takes; the requester
// adds information only (and its server escalates).
var receiverMessages = []string{MsgAcknowledge, MsgAnswer, MsgMoreInformation, MsgAccept, MsgDecline}

// responds reports whether a step stops the request's response clock: a
// substantive response, not a mere acknowledgement.
func responds(msg string) bool {
	return msg == MsgAnswer || msg == MsgAccept || msg == MsgDecline
}

// extensionSchema is the JSON schema of the assistance extension's
// properties (STIX 2.1 §7.3: the extension-definition's schema).
const extensionSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Mitra assistance","type":"object",` +
	`"required":["extension_type","message"],"properties":{` +
	`"extension_type":{"const":"property-extension"},` +
	`"message":{"enum":["request","acknowledge","answer","more-information","information","accept","decline","escalate","challenge"]},` +
	`"kind":{"enum":["information","analysis","takedown","blocking","coordination"],"description":"what a request asks for"},` +
	`"request_ref":{"type":"string","pattern":"^note--","description":"the request a step belongs to"},` +
	`"requester_ref":{"type":"string","pattern":"^identity--","description":"the requesting organisation"},` +
	`"requester_name":{"type":"string"},` +
	`"author_ref":{"type":"string","pattern":"^identity--","description":"the organisation that took a step"},` +
	`"author_name":{"type":"string"},` +
	`"contact_ref":{"type":"string","pattern":"^identity--","description":"the point of contact addressed (a request, an escalation)"},` +
	`"contact_organisation_ref":{"type":"string","pattern":"^identity--"},` +
	`"response_seconds":{"type":"integer","minimum":1,"description":"requested response time"},` +
	`"reply_collection":{"type":"string","description":"the requester's TAXII collection that takes the steps"},` +
	`"escalation":{"type":"integer","minimum":1,"description":"how many times the request was escalated, on an escalate step"}}}`

// ExtensionDefinition is the assistance extension-definition object.
var ExtensionDefinition = json.RawMessage(`{"type":"extension-definition","spec_version":"2.1","id":"` + ExtensionID + `",` +
	`"created_by_ref":"` + MitraIdentityID + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",` +
	`"name":"Mitra cross-border assistance","description":"An assistance request between national CERTs and the steps after it (acknowledge, answer, more-information, information, accept, decline, escalate), carried on STIX notes.",` +
	`"schema":` + jsonString(extensionSchema) + `,"version":"1.0.0","extension_types":["property-extension"]}`)

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ext is the assistance extension's properties.
type ext struct {
	ExtensionType          string `json:"extension_type"`
	Message                string `json:"message"`
	Kind                   string `json:"kind,omitempty"`
	RequestRef             string `json:"request_ref,omitempty"`
	RequesterRef           string `json:"requester_ref,omitempty"`
	RequesterName          string `json:"requester_name,omitempty"`
	AuthorRef              string `json:"author_ref,omitempty"`
	AuthorName             string `json:"author_name,omitempty"`
	ContactRef             string `json:"contact_ref,omitempty"`
	ContactOrganisationRef string `json:"contact_organisation_ref,omitempty"`
	ResponseSeconds        int64  `json:"response_seconds,omitempty"`
	ReplyCollection        string `json:"reply_collection,omitempty"`
	Escalation             int    `json:"escalation,omitempty"`
}

// note is a STIX note of the extension.
type note struct {
	Type              string         `json:"type"`
	SpecVersion       string         `json:"spec_version"`
	ID                string         `json:"id"`
	Created           string         `json:"created"`
	Modified          string         `json:"modified"`
	Abstract          string         `json:"abstract,omitempty"`
	Content           string         `json:"content"`
	Authors           []string       `json:"authors,omitempty"`
	ObjectRefs        []string       `json:"object_refs"`
	ObjectMarkingRefs []string       `json:"object_marking_refs,omitempty"`
	Recipients        []string       `json:"x_mitra_recipients,omitempty"`
	Extensions        map[string]ext `json:"extensions"`
}

// tlpMarkings are the TLP 2.0 marking definitions.
var tlpMarkings = map[access.TLP]string{
	access.TLPClear:       "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	access.TLPGreen:       "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	access.TLPAmber:       "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	access.TLPAmberStrict: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	access.TLPRed:         "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// newNote builds a note of the extension at now, marked tlp (and as an
// exercise when exercise is set).
func newNote(now time.Time, abstract, content string, refs []string, level access.TLP, recipients []string, exercise bool, e ext) ([]byte, string, error) {
	ts := timestamp(now)
	e.ExtensionType = "property-extension"
	n := note{Type: "note", SpecVersion: "2.1", ID: "note--" + uuid.NewString(), Created: ts, Modified: ts, Abstract: abstract,
		Content: content, ObjectRefs: refs, Extensions: map[string]ext{ExtensionID: e}}
	if content == "" {
		n.Content = abstract
	}
	if m, ok := tlpMarkings[level]; ok {
		n.ObjectMarkingRefs = append(n.ObjectMarkingRefs, m)
	}
	if exercise {
		n.ObjectMarkingRefs = append(n.ObjectMarkingRefs, stix.ExerciseMarkingID)
	}
	if level >= access.TLPAmberStrict {
		slices.Sort(recipients)
		n.Recipients = slices.Compact(recipients)
	}
	b, err := json.Marshal(n)
	return b, n.ID, err
}

// parsed is a note of the extension read back.
type parsed struct {
	ID       string
	Created  time.Time
	Abstract string
	Content  string
	Refs     []string
	Markings []string
	Ext      ext
}

// parseNote reads raw as a note of the extension; ok is false for any
// other object.
func parseNote(raw []byte) (parsed, bool) {
	var n struct {
		Type              string                     `json:"type"`
		ID                string                     `json:"id"`
		Created           string                     `json:"created"`
		Abstract          string                     `json:"abstract"`
		Content           string                     `json:"content"`
		ObjectRefs        []string                   `json:"object_refs"`
		ObjectMarkingRefs []string                   `json:"object_marking_refs"`
		Extensions        map[string]json.RawMessage `json:"extensions"`
	}
	if json.Unmarshal(raw, &n) != nil || n.Type != "note" {
		return parsed{}, false
	}
	x, ok := n.Extensions[ExtensionID]
	if !ok {
		return parsed{}, false
	}
	var e ext
	if json.Unmarshal(x, &e) != nil || e.Message == "" {
		return parsed{}, false
	}
	created, err := stix.ParseTimestamp(n.Created)
	if err != nil {
		return parsed{}, false
	}
	return parsed{ID: n.ID, Created: created, Abstract: n.Abstract, Content: n.Content, Refs: n.ObjectRefs, Markings: n.ObjectMarkingRefs, Ext: e}, true
}

// tlpName is the level a note's markings say, for display.
func tlpName(markings []string) string {
	best, found := access.TLPUnmarked, false
	for level, id := range tlpMarkings {
		if slices.Contains(markings, id) && (!found || level > best) {
			best, found = level, true
		}
	}
	if !found {
		return ""
	}
	return best.String()
}

// validKind checks a request's kind.
func validKind(k string) error {
	if !slices.Contains(Kinds, k) {
		return fmt.Errorf("kind %q: want one of %v: %w", k, Kinds, ErrInvalid)
	}
	return nil
}

// timestamp renders t as a STIX timestamp (millisecond precision, UTC).
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
