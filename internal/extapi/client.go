package extapi

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

// Client calls an extension API of a Mitra server.
type Client struct {
	// BaseURL is the server's address (https://host:port).
	BaseURL string
	// User and Password select HTTP Basic; Token selects Bearer.
	User, Password, Token string
	HTTP                  *http.Client
}

// NewClient checks the address; the client's requests time out after a
// minute.
func NewClient(base string) (Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Client{}, fmt.Errorf("server URL %q: want an absolute http or https URL", base)
	}
	return Client{BaseURL: u.Scheme + "://" + u.Host, HTTP: &http.Client{Timeout: time.Minute}}, nil
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

// Do sends in (none when nil) as JSON to BaseURL+path and reads the JSON
// answer into out. An answer other than 2xx is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
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
