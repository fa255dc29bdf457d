package hashmatch

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
)

// Client calls the hash API of a Mitra server. It sends hashes only.
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
	return &Client{BaseURL: strings.TrimSuffix(u.Scheme+"://"+u.Host, "/"), HTTP: &http.Client{Timeout: 2 * time.Minute}}, nil
}

// APIError is an error answer of the server.
type APIError struct {
	Status int
	Body   string
}

func (e *APIError) Error() string {
	var m struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if json.Unmarshal([]byte(e.Body), &m) == nil && (m.Title != "" || m.Description != "") {
		return fmt.Sprintf("server answered %d: %s: %s", e.Status, m.Title, m.Description)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, strings.TrimSpace(e.Body))
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+Prefix+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: read answer: %w", path, err)
	}
	if res.StatusCode/100 != 2 {
		return &APIError{Status: res.StatusCode, Body: string(body)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: answer: %w", path, err)
	}
	return nil
}

// Share shares hashes.
func (c *Client) Share(ctx context.Context, r ShareRequest) (*ShareResponse, error) {
	var out ShareResponse
	return &out, c.post(ctx, "share", r, &out)
}

// Match asks for the shared hashes near r's.
func (c *Client) Match(ctx context.Context, r MatchRequest) (*Result, error) {
	var out Result
	return &out, c.post(ctx, "match", r, &out)
}

// Verdict records a verdict on an indicator.
func (c *Client) Verdict(ctx context.Context, r VerdictRequest) (*ShareResponse, error) {
	var out ShareResponse
	return &out, c.post(ctx, "verdict", r, &out)
}
