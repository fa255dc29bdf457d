package store

import (
	"context"
	"time"
)

// This file declares what the store keeps for federation peers (issue 14):
// peers, their links, each link's status, the objects a link refused, the
// provenance of mirrored objects, and link leases.

// Link directions.
const (
	LinkPull = "pull" // remote collection into local collection
	LinkPush = "push" // local collection to remote collection
)

// Peer is a remote server mapped to a local organisation.
type Peer struct {
	Name string
	// URL is the remote API root.
	URL string
	// Organisation is the local organisation (identity id) the peer acts
	// as: pulled objects are stored under it, pushes see what it may read.
	Organisation string
	User         string
	// Secret is the sealed credentials (password, token, client key); the
	// store never sees them in plaintext.
	Secret []byte
	CA     string // PEM bundle trusted for the remote's certificate
	Cert   string // PEM client certificate
	// Created is set by the store.
	Created time.Time
}

// Link is one direction of synchronisation between a local and a remote
// collection, with its status.
type Link struct {
	ID        string
	Peer      string
	Direction string // LinkPull or LinkPush
	Local     string // local collection id
	Remote    string // remote collection id
	// Interval between runs; zero means continuously (a short pause).
	Interval time.Duration
	Created  time.Time

	LastSuccess time.Time
	LastError   string
	LastErrorAt time.Time
	// LagObjects is how many objects the last run left behind (known only
	// for pushes, where the local side counts); LagSeconds how old the
	// last success is at the time of the status.
	LagObjects int64
	Lag        time.Duration
	// Synced counts the objects the link has stored or delivered.
	Synced int64
}

// LinkStatus is the outcome of one run of a link.
type LinkStatus struct {
	At         time.Time
	Err        string // empty on success
	LagObjects int64
	Lag        time.Duration
	Synced     int64 // added to Link.Synced
}

// Rejection is an object a link refused, with why.
type Rejection struct {
	Link     string
	Peer     string
	Kind     string // "invalid", "ownership", "conflict", "remote"
	ObjectID string
	Version  string
	Reason   string
	At       time.Time
}

// Provenance records which link brought an object version, and when.
type Provenance struct {
	ObjectID string
	Version  string
	Link     string
	Peer     string
	Received time.Time
}

// Peers keeps federation peers and their links.
type Peers interface {
	// CreatePeer stores a new peer; ErrConflict when the name is taken,
	// ErrNotFound (wrapped) when its organisation does not exist.
	CreatePeer(ctx context.Context, p *Peer) error
	GetPeer(ctx context.Context, name string) (*Peer, error)
	ListPeers(ctx context.Context) ([]*Peer, error)
	// DeletePeer removes the peer and its links (their cursors stay, so a
	// peer added again under the same name and links resumes).
	DeletePeer(ctx context.Context, name string) error
	// AddLink stores a new link of an existing peer; ErrConflict when its
	// id is taken.
	AddLink(ctx context.Context, l *Link) error
	// Links lists the links of peer (of every peer when peer is "").
	Links(ctx context.Context, peer string) ([]*Link, error)
	// SetLinkStatus records the outcome of one run of a link.
	SetLinkStatus(ctx context.Context, linkID string, st LinkStatus) error
	// Rejections lists the latest rejections of a peer's links, newest
	// first.
	Rejections(ctx context.Context, peer string, limit int) ([]Rejection, error)
	// PruneRejections removes rejections recorded before before and
	// returns how many were removed.
	PruneRejections(ctx context.Context, before time.Time) (int64, error)
	// ObjectProvenance lists where the versions of an object came from.
	ObjectProvenance(ctx context.Context, objectID string) ([]Provenance, error)
	// TakeLease makes holder the runner of link until now+ttl, when the
	// lease is free, expired or already holder's; false when another
	// holder's lease is live. ReleaseLease frees holder's lease.
	TakeLease(ctx context.Context, link, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, link, holder string) error
}

// FederationTx is what Updater transactions of the SQL backends add for
// federation: provenance and rejections committed together with the
// objects and the link's cursor.
type FederationTx interface {
	RecordProvenance(ctx context.Context, ps []Provenance) error
	RecordRejections(ctx context.Context, rs []Rejection) error
}
