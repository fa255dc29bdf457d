package taxiiclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry says how a Client retries failed requests: 429, 500, 502, 503 and
// 504 answers, attempts that time out and transport errors (a reset
// connection, a body cut short). The delay before retry n (from 0) is
// Base·2ⁿ, capped at Max, plus up to 10 % jitter, and never shorter than
// the server's Retry-After (RFC 9110 §10.2.3).
type Retry struct {
	// Attempts is how many retries follow the first attempt; 8 when zero,
	// none when negative.
	Attempts int
	// Base is the first delay; 500 ms when zero.
	Base time.Duration
	// Max caps the exponential delay; 1 minute when zero.
	Max time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a server asking
	// for more gets the error back instead of a stalled client. 10 minutes
	// when zero.
	MaxRetryAfter time.Duration
}

// DefaultRetry is the retry policy of a zero Retry.
var DefaultRetry = Retry{Attempts: 8, Base: 500 * time.Millisecond, Max: time.Minute, MaxRetryAfter: 10 * time.Minute}

func (r Retry) withDefaults() Retry {
	d := DefaultRetry
	if r.Attempts != 0 {
		d.Attempts = max(r.Attempts, 0)
	}
	if r.Base > 0 {
		d.Base = r.Base
	}
	if r.Max > 0 {
		d.Max = r.Max
	}
	if r.MaxRetryAfter > 0 {
		d.MaxRetryAfter = r.MaxRetryAfter
	}
	return d
}

// delay is the wait before retry n.
func (r Retry) delay(n int, retryAfter time.Duration) time.Duration {
	d := r.Base
	for i := 0; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	d += time.Duration(rand.Int64N(int64(d)/10 + 1))
	return max(d, retryAfter)
}

// transientError is a failure of the connection rather than an answer.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// retryable reports whether a failed attempt is worth repeating, and the
// server's Retry-After when it gave one.
func retryable(err error) (bool, time.Duration) {
	var te *Error
	if errors.As(err, &te) {
		switch te.Status {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true, te.RetryAfter
		}
		return false, 0
	}
	var tr *transientError
	return errors.As(err, &tr), 0
}

// retryAfter reads a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// do sends a request, retrying as c.Retry says.
func (c *Client) do(ctx context.Context, method, u string, body []byte, out any) (http.Header, error) {
	policy := c.Retry.withDefaults()
	for attempt := 0; ; attempt++ {
		h, err := c.once(ctx, method, u, body, out)
		if err == nil {
			return h, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		ok, after := retryable(err)
		if !ok || attempt >= policy.Attempts {
			if ok {
				return nil, fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return nil, err
		}
		if after > policy.MaxRetryAfter {
			return nil, fmt.Errorf("server asks to retry after %s, more than the %s allowed: %w", after, policy.MaxRetryAfter, err)
		}
		d := policy.delay(attempt, after)
		if c.OnRetry != nil {
			c.OnRetry(err, attempt+1, d)
		}
		if err := c.sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
