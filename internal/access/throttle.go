package access

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// ThrottleConfig sets how failed password sign-ins slow down further
// attempts. The zero value of a field takes its default.
type ThrottleConfig struct {
	// Free is how many failures a user name or a client address may have
	// before attempts are delayed (5).
	Free int
	// Base is the first delay (1s); each further failure doubles it.
	Base time.Duration
	// Max caps the delay (1 minute), so that nobody can lock a user out
	// for long by failing on purpose.
	Max time.Duration
	// Window: failures are forgotten this long after the last one (15m).
	Window time.Duration
	// MaxEntries bounds each tracking table (users, addresses, known good
	// pairs) to this many entries (10000); the least recently failing go
	// first, so memory stays bounded whatever an attacker sends.
	MaxEntries int
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.Free <= 0 {
		c.Free = 5
	}
	if c.Base <= 0 {
		c.Base = time.Second
	}
	if c.Max <= 0 {
		c.Max = time.Minute
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 10000
	}
	return c
}

// ErrThrottled is wrapped by ThrottledError.
var ErrThrottled = errors.New("too many failed sign-ins")

// ThrottledError refuses a password sign-in without checking it, because
// of recent failures for the user name or from the client address.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; retry in %s", e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1
// (the Retry-After header, RFC 9110 §10.2.3).
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// throttle tracks failed sign-ins per user name and per client address.
//
// A user name under attack is delayed only for addresses that have not
// signed in as that user before: the owner keeps working from where it
// usually signs in while guesses from elsewhere are slowed down.
type throttle struct {
	cfg   ThrottleConfig
	mu    sync.Mutex
	users *lru
	addrs *lru
	good  *lru // user + "\x00" + address that signed in successfully
}

func newThrottle(cfg ThrottleConfig) *throttle {
	cfg = cfg.withDefaults()
	return &throttle{cfg: cfg, users: newLRU(cfg.MaxEntries), addrs: newLRU(cfg.MaxEntries), good: newLRU(cfg.MaxEntries)}
}

// failures is one tracked key's record.
type failures struct {
	n     int
	last  time.Time
	until time.Time // attempts before this are refused
}

// wait says how long an attempt by user from addr must still wait (0: go
// ahead).
func (t *throttle) wait(user, addr string, now time.Time) time.Duration {
	addr = addrKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	var w time.Duration
	if addr != "" {
		if f := t.addrs.get(addr); f != nil && now.Before(f.until) {
			w = f.until.Sub(now)
		}
	}
	if f := t.users.get(user); f != nil && now.Before(f.until) && (addr == "" || t.good.get(user+"\x00"+addr) == nil) {
		w = max(w, f.until.Sub(now))
	}
	return w
}

// fail records a failed attempt and reports whether it starts a delay.
func (t *throttle) fail(user, addr string, now time.Time) (delayed bool) {
	addr = addrKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	if addr != "" {
		delayed = t.record(t.addrs, addr, now)
	}
	return t.record(t.users, user, now) || delayed
}

func (t *throttle) record(l *lru, key string, now time.Time) bool {
	f := l.get(key)
	if f == nil || now.Sub(f.last) > t.cfg.Window {
		f = &failures{}
		l.put(key, f)
	} else {
		l.touch(key)
	}
	f.n++
	f.last = now
	if f.n <= t.cfg.Free {
		return false
	}
	d := t.cfg.Max
	if shift := f.n - t.cfg.Free - 1; shift < 30 {
		d = min(t.cfg.Base<<shift, t.cfg.Max)
	}
	f.until = now.Add(d)
	return true
}

// succeed remembers that addr signed in as user.
func (t *throttle) succeed(user, addr string, now time.Time) {
	if addr == "" {
		return
	}
	addr = addrKey(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	k := user + "\x00" + addr
	if t.good.get(k) == nil {
		t.good.put(k, &failures{last: now})
	} else {
		t.good.touch(k)
	}
}

// size returns the number of tracked entries, for the metric.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.users.l.Len() + t.addrs.l.Len() + t.good.l.Len()
}

// addrKey is the throttle's key for a client address: IPv6 addresses count
// per /64, the block one subscriber usually holds whole.
func addrKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || ip.Unmap().Is4() {
		return addr
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// lru is a map bounded to max entries, dropping the least recently used.
type lru struct {
	max int
	l   *list.List
	m   map[string]*list.Element
}

type lruItem struct {
	key string
	f   *failures
}

func newLRU(max int) *lru { return &lru{max: max, l: list.New(), m: map[string]*list.Element{}} }

func (c *lru) get(key string) *failures {
	if e, ok := c.m[key]; ok {
		return e.Value.(*lruItem).f
	}
	return nil
}

func (c *lru) touch(key string) {
	if e, ok := c.m[key]; ok {
		c.l.MoveToFront(e)
	}
}

func (c *lru) put(key string, f *failures) {
	if e, ok := c.m[key]; ok {
		e.Value.(*lruItem).f = f
		c.l.MoveToFront(e)
		return
	}
	for c.l.Len() >= c.max {
		old := c.l.Back()
		c.l.Remove(old)
		delete(c.m, old.Value.(*lruItem).key)
	}
	c.m[key] = c.l.PushFront(&lruItem{key: key, f: f})
}
