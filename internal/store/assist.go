package store

import (
	"context"
	"time"
)

// Delivery is one queued delivery of assistance objects (requests, their
// steps, reachability challenges) to another server: kept until the other
// server took them, retried with backoff meanwhile (issue 15).
type Delivery struct {
	Seq int64 `json:"seq"`
	// Label groups deliveries (the request id they belong to).
	Label string `json:"label"`
	// Collection is the local collection the objects are read from.
	Collection string `json:"collection"`
	// Objects are the ids sent, latest versions.
	Objects []string `json:"objects"`
	// Route says where they go: "contact:IDENTITY" (resolved in the
	// directory at each attempt) or "peer:NAME".
	Route string `json:"route"`
	// RemoteCollection is the peer's collection, for peer routes.
	RemoteCollection string    `json:"remote_collection,omitempty"`
	Attempts         int       `json:"attempts"`
	NextAttempt      time.Time `json:"next_attempt"`
	LastError        string    `json:"last_error,omitempty"`
	// Delivered is when the other server took them (zero: pending).
	Delivered time.Time `json:"delivered,omitzero"`
	Created   time.Time `json:"created"`
}

// Challenge is one reachability test of a point of contact.
type Challenge struct {
	ID      string    `json:"id"`
	Contact string    `json:"contact"`
	Channel string    `json:"channel"`
	Sent    time.Time `json:"sent"`
	// SendError says why the challenge could not be sent ("" when sent).
	SendError   string    `json:"send_error,omitempty"`
	Answered    time.Time `json:"answered,omitzero"` // zero: not answered
	AnsweredVia string    `json:"answered_via,omitempty"`
}

// Assistance is what the assistance service keeps besides STIX objects.
type Assistance interface {
	// EnqueueDelivery stores d (Seq and Created are set).
	EnqueueDelivery(ctx context.Context, d *Delivery) error
	// DueDeliveries lists pending deliveries whose next attempt is at or
	// before now, oldest first.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// DeliveryDone marks a delivery delivered at at.
	DeliveryDone(ctx context.Context, seq int64, at time.Time) error
	// DeliveryFailed counts a failed attempt and sets the next one.
	DeliveryFailed(ctx context.Context, seq int64, reason string, next time.Time) error
	// Deliveries lists the deliveries of a label ("" for all), oldest first.
	Deliveries(ctx context.Context, label string) ([]Delivery, error)
	// CreateChallenge stores c.
	CreateChallenge(ctx context.Context, c *Challenge) error
	// AnswerChallenge records the first answer; later answers change
	// nothing. ErrNotFound for an unknown id.
	AnswerChallenge(ctx context.Context, id string, at time.Time, via string) (*Challenge, error)
	// Challenges lists the challenges of a contact ("" for all) sent at or
	// after since, oldest first.
	Challenges(ctx context.Context, contact string, since time.Time) ([]Challenge, error)
}
