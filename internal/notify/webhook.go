package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Webhook headers. The signature is
//
//	X-Mitra-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// so that a receiver checks both the body and when it was signed: a
// signature older than its tolerance, or one seen before, is a replay.
const (
	HeaderSignature = "X-Mitra-Signature"
	HeaderDelivery  = "X-Mitra-Delivery"
	HeaderEvent     = "X-Mitra-Event"
)

// Sign returns the signature header value of body sent at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// WebhookSender posts deliveries as JSON, signed with Secret.
type WebhookSender struct {
	Secret []byte
	// Client sends the requests; its Timeout bounds an attempt (keep it
	// under the queue's lease). Default: 30s timeout.
	Client *http.Client
}

// Send implements Sender. A 2xx answer delivers; 4xx other than 408 and
// 429 fails for good; anything else is retried.
func (w *WebhookSender) Send(ctx context.Context, d store.Notification, at time.Time) error {
	cl := w.Client
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(d.Body))
	if err != nil {
		return &Permanent{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mitra-notify")
	req.Header.Set(HeaderDelivery, d.ID)
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderSignature, Sign(w.Secret, d.Body, at))
	res, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", d.Target, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	switch {
	case res.StatusCode/100 == 2:
		return nil
	case res.StatusCode/100 == 4 && res.StatusCode != http.StatusRequestTimeout && res.StatusCode != http.StatusTooManyRequests:
		return &Permanent{fmt.Errorf("post %s: %s", d.Target, res.Status)}
	default:
		return fmt.Errorf("post %s: %s", d.Target, res.Status)
	}
}

// Verification errors.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook signature too old or from the future")
	ErrReplay       = errors.New("webhook signature seen before (replay)")
)

// Verifier checks signed webhooks on the receiving side: the HMAC, the
// timestamp within Tolerance of Now, and that the same signature is not
// accepted twice (a replay within the tolerance window). A retried
// delivery is signed again, so it is not a replay: receivers deduplicate
// deliveries by their X-Mitra-Delivery id.
type Verifier struct {
	Secret    []byte
	Tolerance time.Duration // default 5 minutes
	Now       func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // signature -> its timestamp
}

// Verify checks the headers and body of one request.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = 5 * time.Minute
	}
	var ts, sig string
	for _, part := range strings.Split(h.Get(HeaderSignature), ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = val
		case "v1":
			sig = val
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("%w: malformed %s header", ErrBadSignature, HeaderSignature)
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(v.Secret, ts, body)) {
		return ErrBadSignature
	}
	at, n := time.Unix(sec, 0), now()
	if at.Before(n.Add(-tol)) || at.After(n.Add(tol)) {
		return ErrStale
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]time.Time{}
	}
	for s, t := range v.seen {
		// Older signatures are refused as stale anyway.
		if t.Before(n.Add(-tol)) {
			delete(v.seen, s)
		}
	}
	if _, dup := v.seen[sig]; dup {
		return ErrReplay
	}
	v.seen[sig] = at
	return nil
}
