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
	Incident     string
	Stage        string
	At           time.Time
	User         string
	Organisation string
	Ref          string // the STIX object that met it (report, incident), if any
}

// IncidentEvent is one step of an incident's history: a report, a
// transition, a stage met, a follow-up. Seq orders them.
type IncidentEvent struct {
	Seq          int64
	Incident     string
	At           time.Time
	User         string
	Organisation string
	Kind         string // reported, transition, stage, follow-up, alert
	From, To     string // states, for a transition
	Stage        string
	Note         string
	Ref          string
}

// IncidentFilter selects incidents; zero fields do not filter.
type IncidentFilter struct {
	State        string
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
	ID      string
	Channel string // "webhook" or "email"
	Target  string // URL or e-mail address
	Event   string // e.g. incident.reported, stage.overdue
	Subject string
	Body    []byte // JSON document sent (webhook) or described (e-mail)
	// Organisation the delivery is about or for ("" for operator-wide
	// targets); listings show an organisation only its own.
	Organisation string
	State        string
	Attempts     int
	NextAttempt  time.Time
	LeasedUntil  time.Time
	LastError    string
	Created      time.Time
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
