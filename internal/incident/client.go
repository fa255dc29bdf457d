package incident

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Client calls the incident API of a Mitra server.
type Client struct {
	// BaseURL is the server's address (https://host:port).
	BaseURL string
	// User and Password select HTTP Basic; Token selects Bearer.
	User, Password, Token string
	HTTP                  *http.Client
	// Prefix is the API's path (Prefix when empty; the drill's incident
	// API for drills).
	Prefix string
}

// NewClient checks the address.
func NewClient(base string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want an absolute http or https URL", base)
	}
	return &Client{BaseURL: u.Scheme + "://" + u.Host, HTTP: &http.Client{Timeout: time.Minute}}, nil
}

// APIError is an error answer of the server (a TAXII error message).
type APIError struct {
	Status      int
	Title       string
	Description string
}

func (e *APIError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("server answered %d: %s: %s", e.Status, e.Title, e.Description)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Title)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+cmp.Or(c.Prefix, Prefix)+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		e := &APIError{Status: res.StatusCode}
		var m struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if json.Unmarshal(b, &m) == nil && m.Title != "" {
			e.Title, e.Description = m.Title, m.Description
		} else {
			e.Title = strings.TrimSpace(string(b))
		}
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
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
