package assist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Client calls the assistance and directory APIs of a Mitra server.
type Client struct {
	// BaseURL is the server's address (https://host:port).
	BaseURL string
	// User and Password select HTTP Basic; Token selects Bearer.
	User, Password, Token string
	HTTP                  *http.Client
	// Prefix and PocPrefix are the APIs' paths (Prefix and PocPrefix; a
	// drill's under its own).
	Prefix, PocPrefix string
}

// NewClient checks the address.
func NewClient(base string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want an absolute http or https URL", base)
	}
	return &Client{BaseURL: u.Scheme + "://" + u.Host, HTTP: &http.Client{Timeout: time.Minute}, Prefix: Prefix, PocPrefix: PocPrefix}, nil
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
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
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

// Raise raises a request.
func (c *Client) Raise(ctx context.Context, b RaiseBody) (*Request, error) {
	var r Request
	return &r, c.do(ctx, http.MethodPost, c.Prefix+"requests", b, &r)
}

// List lists the requests the caller sees.
func (c *Client) List(ctx context.Context) ([]*Request, error) {
	var out struct {
		Requests []*Request `json:"requests"`
	}
	return out.Requests, c.do(ctx, http.MethodGet, c.Prefix+"requests", nil, &out)
}

// Get returns one request.
func (c *Client) Get(ctx context.Context, id string) (*Request, error) {
	var r Request
	return &r, c.do(ctx, http.MethodGet, c.Prefix+"requests/"+url.PathEscape(id), nil, &r)
}

// Step adds a step to a request.
func (c *Client) Step(ctx context.Context, id, message, content string) (*Request, error) {
	var r Request
	return &r, c.do(ctx, http.MethodPost, c.Prefix+"requests/"+url.PathEscape(id)+"/steps", StepBody{Message: message, Content: content}, &r)
}

// Tick runs the server's assistance clock now (administrators).
func (c *Client) Tick(ctx context.Context) (*TickResult, error) {
	var r TickResult
	return &r, c.do(ctx, http.MethodPost, c.Prefix+"tick", struct{}{}, &r)
}

// Contacts lists the directory entries the caller sees.
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var out struct {
		Contacts []Contact `json:"contacts"`
	}
	return out.Contacts, c.do(ctx, http.MethodGet, c.PocPrefix+"contacts", nil, &out)
}

// AddContact adds or updates a directory entry.
func (c *Client) AddContact(ctx context.Context, ct Contact) (*Contact, error) {
	var r Contact
	return &r, c.do(ctx, http.MethodPost, c.PocPrefix+"contacts", ct, &r)
}

// Ping sends challenges (to the contacts named; all when none).
func (c *Client) Ping(ctx context.Context, contacts []string) ([]store.Challenge, error) {
	var out struct {
		Challenges []store.Challenge `json:"challenges"`
	}
	return out.Challenges, c.do(ctx, http.MethodPost, c.PocPrefix+"ping", map[string]any{"contacts": contacts}, &out)
}

// Answer answers a challenge as the caller.
func (c *Client) Answer(ctx context.Context, id string) (*store.Challenge, error) {
	var r store.Challenge
	return &r, c.do(ctx, http.MethodPost, c.PocPrefix+"challenges/"+url.PathEscape(id)+"/answer", struct{}{}, &r)
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
	return out.Contacts, c.do(ctx, http.MethodGet, c.PocPrefix+"report"+q, nil, &out)
}
