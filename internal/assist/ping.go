package assist

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

// MsgChallenge is a reachability test sent to a contact's TAXII channel.
const MsgChallenge = "challenge"

// Sign is the signature of a challenge's answer link.
func (s *Service) Sign(id string) string {
	m := hmac.New(sha256.New, s.cfg.PingKey)
	m.Write([]byte("mitra-poc-challenge\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// AnswerLink is the signed link that answers challenge id.
func (s *Service) AnswerLink(id string) string {
	return s.cfg.PublicURL + s.cfg.PocPrefix + "answer/" + url.PathEscape(id) + "?sig=" + s.Sign(id)
}

// Ping sends a challenge to each contact p may see (only those named, when
// only is not empty) over its first channel that can carry one (TAXII,
// then webhook, then e-mail; a phone is rung by people: the challenge is
// recorded as not sent). Each challenge is kept with when it was sent.
func (s *Service) Ping(ctx context.Context, p *access.Principal, only []string) ([]store.Challenge, error) {
	if len(s.cfg.PingKey) == 0 {
		return nil, fmt.Errorf("no point-of-contact key configured (--poc-key): answer links cannot be signed: %w", ErrInvalid)
	}
	contacts, err := s.Contacts(ctx, p)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range only {
		want[id] = true
	}
	col, err := s.collection(ctx, s.cfg.Collection)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []store.Challenge
	for _, c := range contacts {
		if len(want) > 0 && !want[c.ID] {
			continue
		}
		ch := store.Challenge{ID: "challenge-" + randomHex(16), Contact: c.ID, Sent: now}
		ch.Channel, ch.SendError = s.challenge(ctx, p, col, &c, ch.ID)
		if err := s.cfg.Store.CreateChallenge(ctx, &ch); err != nil {
			return out, err
		}
		out = append(out, ch)
	}
	return out, nil
}

// challenge sends one challenge; it returns the channel used and why it
// could not be sent.
func (s *Service) challenge(ctx context.Context, p *access.Principal, col *store.Collection, c *Contact, id string) (channel, sendErr string) {
	link := s.AnswerLink(id)
	subject := "Reachability test of the point of contact " + c.Name
	body := "This is a reachability test of the directory of points of contact. Please confirm that you received it: open " + link +
		" and press Confirm, or answer challenge " + id + " through the API."
	for _, typ := range []string{ChannelTAXII, ChannelWebhook, ChannelEmail} {
		for _, chn := range c.Channels {
			if chn.Type != typ {
				continue
			}
			if typ == ChannelTAXII {
				raw, nid, err := newNote(s.now(), subject, body, []string{c.ID}, access.TLPGreen, nil, s.cfg.Exercise,
					ext{Message: MsgChallenge, ContactRef: c.ID, AuthorRef: p.Organisation})
				if err == nil {
					err = s.write(ctx, p, col, true, raw)
				}
				if err == nil {
					err = s.cfg.Store.EnqueueDelivery(ctx, &store.Delivery{Label: id, Collection: col.ID, Objects: []string{nid}, Route: "contact:" + c.ID, NextAttempt: s.now()})
				}
				if err != nil {
					return typ, err.Error()
				}
				return typ, ""
			}
			if s.cfg.Notifier == nil {
				return typ, "no notification queue configured"
			}
			if err := s.cfg.Notifier.Notify(ctx, chn, subject, body); err != nil {
				return typ, err.Error()
			}
			return typ, ""
		}
	}
	if len(c.Channels) > 0 {
		return c.Channels[0].Type, "the channel is not automated: call and record the answer through the API"
	}
	return "", "no channel"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AnswerSigned records the answer to challenge id given through its signed
// link.
func (s *Service) AnswerSigned(ctx context.Context, id, sig string) (*store.Challenge, error) {
	if len(s.cfg.PingKey) == 0 || !hmac.Equal([]byte(sig), []byte(s.Sign(id))) {
		return nil, fmt.Errorf("challenge %s: %w", id, ErrNotFound)
	}
	return s.answer(ctx, id, "signed link")
}

// Answer records the answer to challenge id given through the API by p
// (an administrator, or a user of the contact's organisation).
func (s *Service) Answer(ctx context.Context, p *access.Principal, id string) (*store.Challenge, error) {
	chs, err := s.cfg.Store.Challenges(ctx, "", time.Time{})
	if err != nil {
		return nil, err
	}
	for _, ch := range chs {
		if ch.ID != id {
			continue
		}
		if !p.IsAdmin() {
			c, err := s.contact(ctx, p, ch.Contact)
			if err != nil || c.Organisation != p.Organisation {
				return nil, fmt.Errorf("challenge %s: %w", id, ErrNotFound)
			}
		}
		return s.answer(ctx, id, "api:"+p.User)
	}
	return nil, fmt.Errorf("challenge %s: %w", id, ErrNotFound)
}

func (s *Service) answer(ctx context.Context, id, via string) (*store.Challenge, error) {
	ch, err := s.cfg.Store.AnswerChallenge(ctx, id, s.now(), via)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("challenge %s: %w", id, ErrNotFound)
	}
	return ch, err
}

// Reachability is one contact's record over time.
type Reachability struct {
	Contact    string `json:"contact"`
	Name       string `json:"name"`
	Country    string `json:"country"`
	Challenges int    `json:"challenges"`
	// Within2h, Within24h and Unanswered count the challenges by how fast
	// they were answered (Within24h excludes those within 2 hours);
	// Pending are younger than 24 hours and not answered yet.
	Within2h   int `json:"within_2h"`
	Within24h  int `json:"within_24h"`
	Unanswered int `json:"unanswered"`
	Pending    int `json:"pending"`
	// Last is the outcome of the latest challenge.
	Last     string    `json:"last"`
	LastSent time.Time `json:"last_sent,omitzero"`
}

// Outcome classes a challenge at now: "within 2 hours", "within 24
// hours", "not answered" or "pending".
func Outcome(ch store.Challenge, now time.Time) string {
	switch {
	case ch.Answered.IsZero() && now.Sub(ch.Sent) < 24*time.Hour:
		return "pending"
	case ch.Answered.IsZero():
		return "not answered"
	case ch.Answered.Sub(ch.Sent) <= 2*time.Hour:
		return "within 2 hours"
	case ch.Answered.Sub(ch.Sent) <= 24*time.Hour:
		return "within 24 hours"
	}
	return "not answered"
}

// Report is the reachability of each contact p may see, over the
// challenges sent since since.
func (s *Service) Report(ctx context.Context, p *access.Principal, since time.Time) ([]Reachability, error) {
	contacts, err := s.Contacts(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []Reachability
	for _, c := range contacts {
		chs, err := s.cfg.Store.Challenges(ctx, c.ID, since)
		if err != nil {
			return nil, err
		}
		r := Reachability{Contact: c.ID, Name: c.Name, Country: c.Country, Challenges: len(chs), Last: "never tested"}
		for _, ch := range chs {
			o := Outcome(ch, now)
			switch o {
			case "within 2 hours":
				r.Within2h++
			case "within 24 hours":
				r.Within24h++
			case "not answered":
				r.Unanswered++
			default:
				r.Pending++
			}
			r.Last, r.LastSent = o, ch.Sent
		}
		out = append(out, r)
	}
	return out, nil
}

// NotifyQueue sends challenges over e-mail and webhooks through the
// durable notification queue.
type NotifyQueue struct{ Queue *notify.Queue }

// Notify implements Notifier.
func (n NotifyQueue) Notify(ctx context.Context, ch Channel, subject, body string) error {
	if n.Queue == nil {
		return errors.New("no notification queue")
	}
	m := notify.Message{Event: "poc.challenge", Subject: subject, Payload: map[string]string{"body": body}}
	var d store.Notification
	var err error
	switch ch.Type {
	case ChannelEmail:
		d, err = notify.Email(ch.Address, m)
	case ChannelWebhook:
		d, err = notify.Webhook(ch.Address, m)
	default:
		return fmt.Errorf("channel %s cannot carry a challenge", ch.Type)
	}
	if err != nil {
		return err
	}
	return n.Queue.Enqueue(ctx, d)
}
