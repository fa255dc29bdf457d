// Package taxiiclient is the TAXII 2.1 client, apart from the server
// (package taxii) so that the detector and federation use it without
// importing the server.
//
// One Client serves everything that pulls or pushes: discovery, API roots,
// collections, paginated object and manifest reads, resumable pulls
// (Pull, with a Cursor to persist), and POSTs with status polling. Every
// request is retried on 429, 5xx, timeouts and transport errors with
// exponential backoff that honours Retry-After.
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
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Title != "" {
		s += ": " + e.Title
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

// Client is a TAXII 2.1 client for one collection (ObjectsURL), which also
// reads the API root and the discovery resource around it. Error message
// resources (TAXII 2.1 §3.6.1) come back as *Error with the HTTP status,
// title, description and details the server sent. A Client is safe for
// concurrent use once configured.
type Client struct {
	// ObjectsURL is the collection's objects endpoint,
	// .../{api-root}/collections/{id}/objects/.
	ObjectsURL string
	// User and Password select HTTP Basic; Token selects Bearer. Client
	// certificates and CA bundles live in HTTP's transport (NewHTTPClient).
	User, Password, Token string
	HTTP                  *http.Client
	// Retry says how failed requests are retried; the zero value is
	// DefaultRetry.
	Retry Retry
	// RequestTimeout bounds each attempt (a page that hangs is abandoned
	// and asked for again from the same cursor); 2 minutes when zero.
	RequestTimeout time.Duration
	// NextMaxAge is how long a next value is trusted (servers expire them;
	// 30 s is common); older ones are not sent and the pull resumes from
	// its added_after bound instead. 25 s when zero.
	NextMaxAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sleep waits between retries; a timer honouring ctx when nil.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, when set, is told about every retry (for logs).
	OnRetry func(err error, attempt int, delay time.Duration)
}

// NewClient returns a client for the objects endpoint of a collection:
// either rawURL itself (when collection is empty) or the collection
// collection of the API root at rawURL.
func NewClient(rawURL, collection string) (*Client, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if collection != "" {
		u.Path += "collections/" + url.PathEscape(collection) + "/objects/"
	} else if !strings.HasSuffix(u.Path, "/objects/") {
		return nil, fmt.Errorf("TAXII URL %q: give the collection's objects endpoint (.../collections/ID/objects/) or an API root and a collection id", rawURL)
	}
	return &Client{ObjectsURL: u.String(), HTTP: &http.Client{}}, nil
}

func parseURL(rawURL string) (*url.URL, error) {
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
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// Dial returns a client for collection at rawURL, which may be the
// discovery endpoint (its default API root is used, or its only one), an
// API root, or the collection's objects endpoint (collection empty).
// Configure credentials with opts before any request is made.
func Dial(ctx context.Context, rawURL, collection string, configure func(*Client)) (*Client, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &Client{HTTP: &http.Client{}}
	if configure != nil {
		configure(c)
	}
	if collection == "" {
		if !strings.HasSuffix(u.Path, "/objects/") {
			return nil, fmt.Errorf("TAXII URL %q: give a collection id, or the collection's objects endpoint", rawURL)
		}
		c.ObjectsURL = u.String()
		return c, nil
	}
	root := u
	// A discovery resource lists API roots (TAXII 2.1 §4.1.1); an API root
	// has versions instead.
	var d Discovery
	if _, err := c.do(ctx, http.MethodGet, u.String(), nil, &d); err != nil {
		return nil, fmt.Errorf("TAXII %s: %w", u, err)
	}
	if d.Default != "" || len(d.APIRoots) > 0 {
		pick := d.Default
		if pick == "" {
			if len(d.APIRoots) != 1 {
				return nil, fmt.Errorf("TAXII discovery %s lists %d API roots and no default: give one of %s", u, len(d.APIRoots), strings.Join(d.APIRoots, ", "))
			}
			pick = d.APIRoots[0]
		}
		if root, err = u.Parse(pick); err != nil {
			return nil, fmt.Errorf("TAXII discovery %s: API root %q: %w", u, pick, err)
		}
		if !strings.HasSuffix(root.Path, "/") {
			root.Path += "/"
		}
	}
	root.Path += "collections/" + url.PathEscape(collection) + "/objects/"
	c.ObjectsURL = root.String()
	return c, nil
}

// APIRootURL is the API root the objects endpoint belongs to.
func (c *Client) APIRootURL() string {
	i := strings.LastIndex(c.ObjectsURL, "/collections/")
	if i < 0 {
		return c.ObjectsURL
	}
	return c.ObjectsURL[:i+1]
}

// collectionURL is the collection resource of the objects endpoint.
func (c *Client) collectionURL() string {
	return strings.TrimSuffix(c.ObjectsURL, "objects/")
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
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

// once sends one request and decodes a 2xx JSON answer into out; other
// answers become *Error.
func (c *Client) once(ctx context.Context, method, u string, body []byte, out any) (http.Header, error) {
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
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
		return nil, &transientError{fmt.Errorf("TAXII %s %s: %w", method, u, err)}
	}
	defer resp.Body.Close()
	b, err := readAnswer(resp)
	if err != nil {
		return nil, &transientError{fmt.Errorf("TAXII %s %s: read answer: %w", method, u, err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := errorFromResponse(resp.StatusCode, b)
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.now())
		return nil, e
	}
	if out != nil {
		decode := json.Unmarshal
		if d, ok := out.(answerDecoder); ok {
			decode = func(b []byte, _ any) error { return d.decodeAnswer(b) }
		}
		if err := decode(b, out); err != nil {
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

// Discovery is a TAXII 2.1 discovery resource (§4.1.1).
type Discovery struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Contact     string   `json:"contact"`
	Default     string   `json:"default"`
	APIRoots    []string `json:"api_roots"`
}

// Discover reads the discovery resource at discoveryURL (.../taxii2/).
func (c *Client) Discover(ctx context.Context, discoveryURL string) (*Discovery, error) {
	var d Discovery
	if _, err := c.do(ctx, http.MethodGet, discoveryURL, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// APIRoot is a TAXII 2.1 API root resource (§4.2.1).
type APIRoot struct {
	Title            string   `json:"title"`
	Description      string   `json:"description"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
}

// APIRoot reads the API root the collection belongs to.
func (c *Client) APIRoot(ctx context.Context) (*APIRoot, error) {
	var r APIRoot
	if _, err := c.do(ctx, http.MethodGet, c.APIRootURL(), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Collection is a TAXII 2.1 collection resource (§5.2.1).
type Collection struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Alias       string   `json:"alias"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

// Collections lists the collections of the API root.
func (c *Client) Collections(ctx context.Context) ([]Collection, error) {
	var r struct {
		Collections []Collection `json:"collections"`
	}
	if _, err := c.do(ctx, http.MethodGet, c.APIRootURL()+"collections/", nil, &r); err != nil {
		return nil, err
	}
	return r.Collections, nil
}

// Collection reads the client's collection resource.
func (c *Client) Collection(ctx context.Context) (*Collection, error) {
	var r Collection
	if _, err := c.do(ctx, http.MethodGet, c.collectionURL(), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// AddObjects posts objects in one envelope and returns the status
// resource. Retrying a POST is safe: objects already stored are reported
// as successes again (TAXII 2.1 §5.5, an identical object is not an error).
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
	if _, err := c.do(ctx, http.MethodGet, c.APIRootURL()+"status/"+url.PathEscape(id)+"/", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// WaitStatus polls a pending status until it is complete.
func (c *Client) WaitStatus(ctx context.Context, st *StatusResource) (*StatusResource, error) {
	delay := 100 * time.Millisecond
	for st.Status == "pending" {
		if err := c.sleep(ctx, delay); err != nil {
			return st, err
		}
		delay = min(2*delay, 5*time.Second)
		var err error
		if st, err = c.Status(ctx, st.ID); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// Push posts objects in one envelope and waits until the status is
// complete.
func (c *Client) Push(ctx context.Context, objs []json.RawMessage) (*StatusResource, error) {
	st, err := c.AddObjects(ctx, objs)
	if err != nil {
		return nil, err
	}
	return c.WaitStatus(ctx, st)
}

// ObjectsQuery filters GetObjects, Manifest and Pull (TAXII 2.1 §3.4).
type ObjectsQuery struct {
	AddedAfter time.Time
	Limit      int
	Types      []string
	IDs        []string
	// Version is match[version]: "last" (default), "first", "all" or
	// timestamps separated by commas.
	Version string
}

// values renders q as URL parameters, without added_after.
func (q ObjectsQuery) values() url.Values {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
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
	return v
}

// formatTime renders a TAXII timestamp, which has exactly microsecond
// precision (TAXII 2.1 §2).
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

// ObjectsPage is what GetObjects hands to its callback per page.
type ObjectsPage struct {
	Objects []json.RawMessage
	// DateAddedLast is X-TAXII-Date-Added-Last: resume with it as
	// AddedAfter.
	DateAddedLast time.Time
}

// envelope is a TAXII 2.1 envelope (§3.7).
type envelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next"`
	Objects []json.RawMessage `json:"objects"`
}

// GetObjects reads every page of the query, following "next", and calls
// fn for each. It trusts the server; Pull is the robust, resumable reader.
func (c *Client) GetObjects(ctx context.Context, q ObjectsQuery, fn func(ObjectsPage) error) error {
	next := ""
	for {
		v := q.values()
		if !q.AddedAfter.IsZero() {
			v.Set("added_after", formatTime(q.AddedAfter))
		}
		if next != "" {
			v.Set("next", next)
		}
		var env envelope
		h, err := c.do(ctx, http.MethodGet, withQuery(c.ObjectsURL, v), nil, &env)
		if err != nil {
			return err
		}
		page := ObjectsPage{Objects: env.Objects}
		page.DateAddedLast, _ = parseHeaderTime(h.Get("X-TAXII-Date-Added-Last"))
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

func withQuery(u string, v url.Values) string {
	if len(v) == 0 {
		return u
	}
	return u + "?" + v.Encode()
}

func parseHeaderTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("absent")
	}
	return time.Parse(time.RFC3339Nano, s)
}

// ManifestRecord is a TAXII 2.1 manifest-record (§5.3.1).
type ManifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

// Manifest reads every page of the collection's manifest for q, following
// next (or X-TAXII-Date-Added-Last without it), and calls fn per page.
func (c *Client) Manifest(ctx context.Context, q ObjectsQuery, fn func([]ManifestRecord) error) error {
	next := ""
	u := strings.TrimSuffix(c.ObjectsURL, "objects/") + "manifest/"
	for {
		v := q.values()
		if !q.AddedAfter.IsZero() {
			v.Set("added_after", formatTime(q.AddedAfter))
		}
		if next != "" {
			v.Set("next", next)
		}
		var m struct {
			More    bool             `json:"more"`
			Next    string           `json:"next"`
			Objects []ManifestRecord `json:"objects"`
		}
		if _, err := c.do(ctx, http.MethodGet, withQuery(u, v), nil, &m); err != nil {
			return err
		}
		if err := fn(m.Objects); err != nil {
			return err
		}
		if !m.More || len(m.Objects) == 0 {
			return nil
		}
		if next = m.Next; next == "" {
			last, err := time.Parse(time.RFC3339Nano, m.Objects[len(m.Objects)-1].DateAdded)
			if err != nil || !last.After(q.AddedAfter) {
				return fmt.Errorf("TAXII manifest says more but gives no next and no later date_added")
			}
			q.AddedAfter = last
		}
	}
}

// maxAnswer is the most of an answer a client reads.
const maxAnswer = 256 << 20

// readAnswer reads at most maxAnswer bytes of resp's body. An answer of
// known length goes into one buffer of that length: io.ReadAll grew and
// cleared a page of the change feed (megabytes) a dozen times.
func readAnswer(resp *http.Response) ([]byte, error) {
	n := resp.ContentLength
	if n <= 0 || n > maxAnswer {
		return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(resp.Body, b); err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer-n))
	return append(b, rest...), err
}
