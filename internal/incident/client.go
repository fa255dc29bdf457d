package incident

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mitra-cert/mitra/internal/extapi"
	"github.com/mitra-cert/mitra/internal/store"
)

// Client calls the incident API of a Mitra server.
type Client struct {
	extapi.Client
	// Prefix is the API's path (Prefix when empty; the drill's incident
	// API for drills).
	Prefix string
}

// NewClient checks the address.
func NewClient(base string) (*Client, error) {
	c, err := extapi.NewClient(base)
	if err != nil {
		return nil, err
	}
	return &Client{Client: c}, nil
}

// APIError is an error answer of the server (a TAXII error message).
type APIError = extapi.APIError

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.Do(ctx, method, cmp.Or(c.Prefix, Prefix)+path, in, out)
}

// Report reports an incident.
func (c *Client) Report(ctx context.Context, r Report) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPost, "", r, &out)
}

// List lists the incidents the caller may see.
func (c *Client) List(ctx context.Context, state string, limit int) ([]*Incident, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := ""
	if len(q) > 0 {
		path = "?" + q.Encode()
	}
	var out struct {
		Incidents []*Incident `json:"incidents"`
	}
	return out.Incidents, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Get returns one incident.
func (c *Client) Get(ctx context.Context, id string) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodGet, url.PathEscape(id), nil, &out)
}

// Transition moves an incident to a state.
func (c *Client) Transition(ctx context.Context, id, state, note string) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPost, url.PathEscape(id)+"/transition", TransitionRequest{State: state, Note: note}, &out)
}

// MeetStage records a stage met by other means.
func (c *Client) MeetStage(ctx context.Context, id, stage, note string) (*Incident, error) {
	var out Incident
	return &out, c.do(ctx, http.MethodPost, url.PathEscape(id)+"/stages/"+url.PathEscape(stage), StageRequest{Note: note}, &out)
}

// FollowUp publishes a follow-up report.
func (c *Client) FollowUp(ctx context.Context, id string, f FollowUp) (*FollowUpResponse, error) {
	var out FollowUpResponse
	return &out, c.do(ctx, http.MethodPost, url.PathEscape(id)+"/reports", f, &out)
}

// Notifications lists the notification queue (administrators).
func (c *Client) Notifications(ctx context.Context, state string, limit int) ([]store.Notification, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Notifications []struct {
			store.Notification
			Body json.RawMessage `json:"body"`
		} `json:"notifications"`
	}
	if err := c.do(ctx, http.MethodGet, "notifications?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	ds := make([]store.Notification, len(out.Notifications))
	for i, n := range out.Notifications {
		ds[i] = n.Notification
		ds[i].Body = n.Body
	}
	return ds, nil
}
