// Package taxiiclient is a small TAXII 2.1 client, apart from the server
// (package taxii) so that the detector and federation use it without
// importing the server.
package taxiiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// MediaType is the TAXII 2.1 media type (TAXII 2.1 §1.6.8).
const MediaType = "application/taxii+json;version=2.1"

// Error is an error message resource (TAXII 2.1 §3.6.1) a server answered
// with, and the HTTP status it came with.
type Error struct {
	Status      int
	Title       string
	Description string
	Details     map[string]any
}

func (e *Error) Error() string {
	if e.Description != "" {
		return e.Title + ": " + e.Description
	}
	return e.Title
}

// Client is a small TAXII 2.1 client for one collection: it adds objects
// (POST an envelope), waits for status resources and reads objects page
// by page. Error message resources (TAXII 2.1 §3.6.1) come back as *Error
// with the HTTP status, title, description and details the server sent.
type Client struct {
	// ObjectsURL is the collection's objects endpoint,
	// .../{api-root}/collections/{id}/objects/.
	ObjectsURL string
	// User and Password select HTTP Basic; Token selects Bearer.
	User, Password, Token string
	HTTP                  *http.Client
}

// NewClient returns a client for the objects endpoint of a collection:
// either objectsURL itself (when collection is empty) or the collection
// collection of the API root at apiRoot.
func NewClient(rawURL, collection string) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("TAXII URL %q: want an absolute http or https URL", rawURL)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("TAXII URL %q: scheme must be http or https", rawURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if collection != "" {
		u.Path += "collections/" + url.PathEscape(collection) + "/objects/"
	} else if !strings.HasSuffix(u.Path, "/objects/") {
		return nil, fmt.Errorf("TAXII URL %q: give the collection's objects endpoint (.../collections/ID/objects/) or an API root and a collection id", rawURL)
	}
	return &Client{ObjectsURL: u.String(), HTTP: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// apiRoot is the API root the objects endpoint belongs to.
func (c *Client) apiRoot() string {
	i := strings.LastIndex(c.ObjectsURL, "/collections/")
	if i < 0 {
		return c.ObjectsURL
	}
	return c.ObjectsURL[:i+1]
}

// StatusResource is a TAXII 2.1 status resource (§4.3.1).
type StatusResource struct {
	ID               string               `json:"id"`
	Status           string               `json:"status"`
	RequestTimestamp string               `json:"request_timestamp"`
	TotalCount       int                  `json:"total_count"`
	SuccessCount     int                  `json:"success_count"`
	Successes        []store.StatusDetail `json:"successes"`
	FailureCount     int                  `json:"failure_count"`
	Failures         []store.StatusDetail `json:"failures"`
	PendingCount     int                  `json:"pending_count"`
	Pendings         []store.StatusDetail `json:"pendings"`
}

// do sends a request and decodes a 2xx JSON answer into out; other
// answers become *Error.
func (c *Client) do(ctx context.Context, method, u string, body []byte, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", MediaType)
	if body != nil {
		req.Header.Set("Content-Type", MediaType)
	}
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("TAXII %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("TAXII %s %s: read answer: %w", method, u, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, errorFromResponse(resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("TAXII %s %s: answer is not the expected JSON: %w", method, u, err)
		}
	}
	return resp.Header, nil
}

// errorFromResponse reads a TAXII error message resource, or makes one
// from the status when the body is something else.
func errorFromResponse(status int, body []byte) *Error {
	var em struct {
		Title       string         `json:"title"`
		Description string         `json:"description"`
		Details     map[string]any `json:"details"`
	}
	if json.Unmarshal(body, &em) == nil && em.Title != "" {
		return &Error{Status: status, Title: em.Title, Description: em.Description, Details: em.Details}
	}
	desc := strings.TrimSpace(string(body))
	if len(desc) > 200 {
		desc = desc[:200] + "..."
	}
	return &Error{Status: status, Title: http.StatusText(status), Description: desc}
}

// AddObjects posts objects in one envelope and returns the status resource.
func (c *Client) AddObjects(ctx context.Context, objs []json.RawMessage) (*StatusResource, error) {
	body, err := json.Marshal(map[string]any{"objects": objs})
	if err != nil {
		return nil, err
	}
	var st StatusResource
	if _, err := c.do(ctx, http.MethodPost, c.ObjectsURL, body, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Status fetches a status resource by id.
func (c *Client) Status(ctx context.Context, id string) (*StatusResource, error) {
	var st StatusResource
	if _, err := c.do(ctx, http.MethodGet, c.apiRoot()+"status/"+url.PathEscape(id)+"/", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// WaitStatus polls a pending status until it is complete.
func (c *Client) WaitStatus(ctx context.Context, st *StatusResource) (*StatusResource, error) {
	delay := 100 * time.Millisecond
	for st.Status == "pending" {
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
		var err error
		if st, err = c.Status(ctx, st.ID); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// ObjectsQuery filters GetObjects (TAXII 2.1 §3.4).
type ObjectsQuery struct {
	AddedAfter time.Time
	Limit      int
	Types      []string
	IDs        []string
	// Version is match[version]: "last" (default), "first", "all" or
	// timestamps separated by commas.
	Version string
}

// ObjectsPage is what GetObjects hands to its callback per page.
type ObjectsPage struct {
	Objects []json.RawMessage
	// DateAddedLast is X-TAXII-Date-Added-Last: resume with it as
	// AddedAfter.
	DateAddedLast time.Time
}

// GetObjects reads every page of the query, following "next", and calls
// fn for each.
func (c *Client) GetObjects(ctx context.Context, q ObjectsQuery, fn func(ObjectsPage) error) error {
	next := ""
	for {
		v := url.Values{}
		if !q.AddedAfter.IsZero() {
			v.Set("added_after", q.AddedAfter.UTC().Format("2006-01-02T15:04:05.000000Z"))
		}
		if q.Limit > 0 {
			v.Set("limit", strconv.Itoa(q.Limit))
		}
		if len(q.Types) > 0 {
			v.Set("match[type]", strings.Join(q.Types, ","))
		}
		if len(q.IDs) > 0 {
			v.Set("match[id]", strings.Join(q.IDs, ","))
		}
		if q.Version != "" {
			v.Set("match[version]", q.Version)
		}
		if next != "" {
			v.Set("next", next)
		}
		u := c.ObjectsURL
		if len(v) > 0 {
			u += "?" + v.Encode()
		}
		var env struct {
			More    bool              `json:"more"`
			Next    string            `json:"next"`
			Objects []json.RawMessage `json:"objects"`
		}
		h, err := c.do(ctx, http.MethodGet, u, nil, &env)
		if err != nil {
			return err
		}
		page := ObjectsPage{Objects: env.Objects}
		if last := h.Get("X-TAXII-Date-Added-Last"); last != "" {
			page.DateAddedLast, _ = time.Parse(time.RFC3339Nano, last)
		}
		if err := fn(page); err != nil {
			return err
		}
		if !env.More {
			return nil
		}
		if env.Next == "" {
			// Without next, continue from the last date added (§3.4.2).
			if page.DateAddedLast.IsZero() {
				return errors.New("TAXII server says more but gives neither next nor X-TAXII-Date-Added-Last")
			}
			q.AddedAfter = page.DateAddedLast
		}
		next = env.Next
	}
}
