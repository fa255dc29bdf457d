package assist

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/mitra-cert/mitra/internal/extapi"
	"github.com/mitra-cert/mitra/internal/store"
)

// Client calls the assistance and directory APIs of a Mitra server.
type Client struct {
	extapi.Client
	// Prefix and PocPrefix are the APIs' paths (Prefix and PocPrefix; a
	// drill's under its own).
	Prefix, PocPrefix string
}

// NewClient checks the address.
func NewClient(base string) (*Client, error) {
	c, err := extapi.NewClient(base)
	if err != nil {
		return nil, err
	}
	return &Client{Client: c, Prefix: Prefix, PocPrefix: PocPrefix}, nil
}

// APIError is an error answer of the server (a TAXII error message).
type APIError = extapi.APIError

// Raise raises a request.
func (c *Client) Raise(ctx context.Context, b RaiseBody) (*Request, error) {
	var r Request
	return &r, c.Do(ctx, http.MethodPost, c.Prefix+"requests", b, &r)
}

// List lists the requests the caller sees.
func (c *Client) List(ctx context.Context) ([]*Request, error) {
	var out struct {
		Requests []*Request `json:"requests"`
	}
	return out.Requests, c.Do(ctx, http.MethodGet, c.Prefix+"requests", nil, &out)
}

// Get returns one request.
func (c *Client) Get(ctx context.Context, id string) (*Request, error) {
	var r Request
	return &r, c.Do(ctx, http.MethodGet, c.Prefix+"requests/"+url.PathEscape(id), nil, &r)
}

// Step adds a step to a request.
func (c *Client) Step(ctx context.Context, id, message, content string) (*Request, error) {
	var r Request
	return &r, c.Do(ctx, http.MethodPost, c.Prefix+"requests/"+url.PathEscape(id)+"/steps", StepBody{Message: message, Content: content}, &r)
}

// Tick runs the server's assistance clock now (administrators).
func (c *Client) Tick(ctx context.Context) (*TickResult, error) {
	var r TickResult
	return &r, c.Do(ctx, http.MethodPost, c.Prefix+"tick", struct{}{}, &r)
}

// Contacts lists the directory entries the caller sees.
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var out struct {
		Contacts []Contact `json:"contacts"`
	}
	return out.Contacts, c.Do(ctx, http.MethodGet, c.PocPrefix+"contacts", nil, &out)
}

// AddContact adds or updates a directory entry.
func (c *Client) AddContact(ctx context.Context, ct Contact) (*Contact, error) {
	var r Contact
	return &r, c.Do(ctx, http.MethodPost, c.PocPrefix+"contacts", ct, &r)
}

// Ping sends challenges (to the contacts named; all when none).
func (c *Client) Ping(ctx context.Context, contacts []string) ([]store.Challenge, error) {
	var out struct {
		Challenges []store.Challenge `json:"challenges"`
	}
	return out.Challenges, c.Do(ctx, http.MethodPost, c.PocPrefix+"ping", map[string]any{"contacts": contacts}, &out)
}

// Answer answers a challenge as the caller.
func (c *Client) Answer(ctx context.Context, id string) (*store.Challenge, error) {
	var r store.Challenge
	return &r, c.Do(ctx, http.MethodPost, c.PocPrefix+"challenges/"+url.PathEscape(id)+"/answer", struct{}{}, &r)
}

// Report returns the reachability report since since (zero: all).
func (c *Client) Report(ctx context.Context, since time.Time) ([]Reachability, error) {
	var out struct {
		Contacts []Reachability `json:"contacts"`
	}
	q := ""
	if !since.IsZero() {
		q = "?since=" + url.QueryEscape(since.UTC().Format(time.RFC3339))
	}
	return out.Contacts, c.Do(ctx, http.MethodGet, c.PocPrefix+"report"+q, nil, &out)
}
