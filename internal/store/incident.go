package store

import "time"

// This file holds the records of incident coordination (issue 15) that the
// store keeps beside the STIX objects: an incident's regime and lifecycle,
// the stages met, the history of every step, and the durable notification
// queue. The incident and notify packages declare what they need of them.

// IncidentRecord is the coordination state of one STIX incident. The
// incident object itself lives in Collection, under the access policy.
type IncidentRecord struct {
	ID         string // the STIX incident id
	Collection string
	// Regime is the reporting regime's name; RegimeDef is the regime as it
	// was when the incident was reported (JSON), so that a changed regime
	// file does not move the clocks of incidents already running.
	Regime    string
	RegimeDef []byte
	Reporter  string // the reporting organisation (identity id)
	CERT      string // the organisation the incident is reported to
	Name      string
	State     string
	AwareAt   time.Time
	Reported  time.Time
	Updated   time.Time
}

// StageMet records that a stage of an incident's regime was met.
type StageMet struct {
	Incident     string    `json:"incident"`
	Stage        string    `json:"stage"`
	At           time.Time `json:"at"`
	User         string    `json:"user"`
	Organisation string    `json:"organisation"`
	Ref          string    `json:"ref,omitempty"` // the STIX object that met it (report, incident), if any
}

// IncidentEvent is one step of an incident's history: a report, a
// transition, a stage met, a follow-up. Seq orders them.
type IncidentEvent struct {
	Seq          int64     `json:"seq"`
	Incident     string    `json:"incident"`
	At           time.Time `json:"at"`
	User         string    `json:"user"`
	Organisation string    `json:"organisation"`
	Kind         string    `json:"kind"`           // reported, transition, stage, follow-up, alert
	From         string    `json:"from,omitempty"` // states, for a transition
	To           string    `json:"to,omitempty"`
	Stage        string    `json:"stage,omitempty"`
	Note         string    `json:"note,omitempty"`
	Ref          string    `json:"ref,omitempty"`
}

// IncidentFilter selects incidents; zero fields do not filter.
type IncidentFilter struct {
	State string
	// Open keeps incidents whose State is not "closed".
	Open         bool
	Organisation string // reporter or CERT
	Limit        int    // 0: 1000
}

// Alert is a deadline notification sent once per incident, stage and kind
// ("approaching", "overdue").
type Alert struct {
	Incident string
	Stage    string
	Kind     string
	At       time.Time
}

// Notification states.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed" // gave up after the last attempt; kept, visible
)

// Notification is one delivery of a notification over one channel
// (webhook or e-mail), queued durably.
type Notification struct {
	ID      string `json:"id"`
	Channel string `json:"channel"` // "webhook" or "email"
	Target  string `json:"target"`  // URL or e-mail address
	Event   string `json:"event"`   // e.g. incident.reported, stage.overdue
	Subject string `json:"subject,omitempty"`
	Body    []byte `json:"body"` // JSON document sent (webhook) or described (e-mail)
	// Organisation the delivery is about or for ("" for operator-wide
	// targets); listings show an organisation only its own.
	Organisation string    `json:"organisation,omitempty"`
	State        string    `json:"state"`
	Attempts     int       `json:"attempts"`
	NextAttempt  time.Time `json:"next_attempt"`
	LeasedUntil  time.Time `json:"leased_until,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	Created      time.Time `json:"created"`
	Delivered    time.Time
}

// NotificationFilter selects notifications; zero fields do not filter.
type NotificationFilter struct {
	State        string
	Organisation string
	Limit        int // 0: 1000
}

// IncidentStep is one recorded step of an incident (see the incident
// package's Store.RecordIncidentStep).
type IncidentStep struct {
	Incident   string
	From, To   string // a state change when To is set
	At         time.Time
	Event      IncidentEvent
	Met        []StageMet
	Deliveries []Notification
}
