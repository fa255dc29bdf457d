package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
)

// Client calls the search API of a Mitra server.
type Client struct {
	// BaseURL is the server's address (https://host:port).
	BaseURL string
	// User and Password select HTTP Basic; Token selects Bearer.
	User, Password, Token string
	HTTP                  *http.Client
}

// NewClient checks the address.
func NewClient(base string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want an absolute http or https URL", base)
	}
	return &Client{BaseURL: u.Scheme + "://" + u.Host, HTTP: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// APIError is an error answer of the server (a TAXII error message).
type APIError struct {
	Status      int
	Title       string
	Description string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d: %s: %s", e.Status, e.Title, e.Description)
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
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+Prefix+path, body)
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
		return fmt.Errorf("search API: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("search API: read answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		e := &APIError{Status: res.StatusCode}
		var m errorMessage
		if json.Unmarshal(b, &m) == nil && m.Title != "" {
			e.Title, e.Description = m.Title, m.Description
		} else {
			e.Title, e.Description = http.StatusText(res.StatusCode), strings.TrimSpace(string(b))
		}
		return e
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("search API: answer: %w", err)
	}
	return nil
}

// Search runs a search on the server.
func (c *Client) Search(ctx context.Context, q Query) (*Result, error) {
	v := url.Values{}
	set := func(name string, l []string) {
		if len(l) > 0 {
			v.Set(name, strings.Join(l, ","))
		}
	}
	if q.Text != "" {
		v.Set("q", q.Text)
	}
	set("type", q.Types)
	set("tlp", q.TLPs)
	set("collection", q.Collections)
	set("organisation", q.Organisations)
	if !q.ModifiedFrom.IsZero() {
		v.Set("modified_from", stix.FormatMicro(q.ModifiedFrom))
	}
	if !q.ModifiedTo.IsZero() {
		v.Set("modified_to", stix.FormatMicro(q.ModifiedTo))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out Result
	path := ""
	if len(v) > 0 {
		path = "?" + v.Encode()
	}
	return &out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Lookup looks values up (at most MaxLookupValues).
func (c *Client) Lookup(ctx context.Context, values []string) ([]LookupResult, error) {
	var out LookupResponse
	err := c.do(ctx, http.MethodPost, "lookup", LookupRequest{Values: values}, &out)
	return out.Results, err
}

// Pivot returns the graph around an object.
func (c *Client) Pivot(ctx context.Context, id string, hops int) (*Graph, error) {
	var out Graph
	return &out, c.do(ctx, http.MethodGet, "pivot/"+url.PathEscape(id)+"?hops="+strconv.Itoa(hops), nil, &out)
}
