package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// testAssistance: deliveries stay pending, with their failed attempts,
// until done (and are then never due again); a challenge keeps its first
// answer only.
func testAssistance(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, ok := s.(store.Assistance)
	if !ok {
		t.Fatal("the store does not implement store.Assistance")
	}
	if err := a.EnqueueDelivery(ctx, &store.Delivery{Label: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("empty delivery: %v", err)
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d1 := &store.Delivery{Label: "req-1", Collection: "c", Objects: []string{"note--1", "note--2"}, Route: "contact:identity--b", NextAttempt: t0}
	d2 := &store.Delivery{Label: "req-2", Collection: "c", Objects: []string{"note--3"}, Route: "peer:p", RemoteCollection: "r", NextAttempt: t0.Add(time.Hour)}
	for _, d := range []*store.Delivery{d1, d2} {
		if err := a.EnqueueDelivery(ctx, d); err != nil || d.Seq == 0 {
			t.Fatalf("enqueue: %v (seq %d)", err, d.Seq)
		}
	}
	due, err := a.DueDeliveries(ctx, t0, 10)
	if err != nil || len(due) != 1 || due[0].Seq != d1.Seq || len(due[0].Objects) != 2 || due[0].Route != d1.Route {
		t.Fatalf("due at t0 = %+v, %v", due, err)
	}
	if err := a.DeliveryFailed(ctx, d1.Seq, "peer unreachable", t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	due, _ = a.DueDeliveries(ctx, t0.Add(time.Hour), 10)
	if len(due) != 1 || due[0].Seq != d2.Seq || due[0].RemoteCollection != "r" {
		t.Errorf("due after a failure = %+v", due)
	}
	if err := a.DeliveryDone(ctx, d2.Seq, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Done twice (two processes): the first time stands.
	if err := a.DeliveryDone(ctx, d2.Seq, t0.Add(3*time.Hour)); err != nil {
		t.Errorf("second done: %v", err)
	}
	if err := a.DeliveryDone(ctx, 999999, t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("done of a missing delivery: %v", err)
	}
	due, _ = a.DueDeliveries(ctx, t0.Add(5*time.Hour), 10)
	if len(due) != 1 || due[0].Seq != d1.Seq || due[0].Attempts != 1 || due[0].LastError != "peer unreachable" {
		t.Errorf("due later = %+v", due)
	}
	all, err := a.Deliveries(ctx, "req-2")
	if err != nil || len(all) != 1 || !all[0].Delivered.Equal(t0.Add(time.Hour)) || all[0].Attempts != 1 {
		t.Errorf("deliveries of req-2 = %+v, %v", all, err)
	}
	if all, _ := a.Deliveries(ctx, ""); len(all) != 2 {
		t.Errorf("all deliveries = %d", len(all))
	}

	c := &store.Challenge{ID: "ch-1", Contact: "identity--b", Channel: "email", Sent: t0}
	if err := a.CreateChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateChallenge(ctx, c); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second challenge of one id: %v", err)
	}
	if err := a.CreateChallenge(ctx, &store.Challenge{ID: "ch-2", Contact: "identity--c", Channel: "phone", Sent: t0.Add(time.Minute), SendError: "no channel"}); err != nil {
		t.Fatal(err)
	}
	got, err := a.AnswerChallenge(ctx, "ch-1", t0.Add(time.Hour), "link")
	if err != nil || !got.Answered.Equal(t0.Add(time.Hour)) || got.AnsweredVia != "link" {
		t.Errorf("answer = %+v, %v", got, err)
	}
	if got, _ := a.AnswerChallenge(ctx, "ch-1", t0.Add(2*time.Hour), "api"); got == nil || !got.Answered.Equal(t0.Add(time.Hour)) || got.AnsweredVia != "link" {
		t.Errorf("second answer changed the first: %+v", got)
	}
	if _, err := a.AnswerChallenge(ctx, "missing", t0, "api"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("answer of a missing challenge: %v", err)
	}
	if l, err := a.Challenges(ctx, "identity--b", time.Time{}); err != nil || len(l) != 1 || l[0].ID != "ch-1" {
		t.Errorf("challenges of b = %+v, %v", l, err)
	}
	if l, _ := a.Challenges(ctx, "", t0.Add(time.Second)); len(l) != 1 || l[0].ID != "ch-2" || l[0].SendError != "no channel" {
		t.Errorf("challenges since = %+v", l)
	}
}
