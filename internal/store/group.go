package store

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Group commit: concurrent POSTs to one collection share one transaction and
// one durable commit (one fsync), instead of queueing on the collection's
// write lock and syncing one by one. Each request keeps its own results,
// status and audit records, all committed in that transaction, so a request
// is answered only once its objects and its status are durable.

// AddRequest is one request's share of a group commit.
type AddRequest struct {
	// Objects are stored in order, after the objects of the requests
	// before this one in the group, exactly as by AddObjects.
	Objects []Object
	// Status, when not nil, receives each object's outcome and is saved in
	// the group's transaction.
	Status *Status
	// Audit, when not nil, is called inside the transaction once Results
	// are known; the records it returns are stored in the transaction.
	Audit func(r *AddRequest) []AuditRecord
	// Results are set by the store: one per object, in order.
	Results []AddResult
}

// GroupAdder is implemented by backends that can store several requests in
// one transaction.
type GroupAdder interface {
	// AddGroup stores the objects of every request of reqs in one
	// transaction holding the collection's write lock, as consecutive
	// AddObjects calls would (a later request sees the versions of earlier
	// ones), saves each request's Status and Audit records in it and
	// commits once. When it returns nil everything is durable; on error
	// nothing is stored.
	AddGroup(ctx context.Context, collectionID string, reqs []*AddRequest) error
}

// GroupObjects returns the objects of reqs in group order.
func GroupObjects(reqs []*AddRequest) []Object {
	n := 0
	for _, r := range reqs {
		n += len(r.Objects)
	}
	objs := make([]Object, 0, n)
	for _, r := range reqs {
		objs = append(objs, r.Objects...)
	}
	return objs
}

// PlanGroup plans objs (GroupObjects(reqs)) as one AddObjects call would
// (owners as for PlanAdd),
// then hands each request its share of the results and records them in
// its Status. Backends execute the returned plan as they execute PlanAdd's,
// then save the statuses and GroupAudit's records.
func PlanGroup(reqs []*AddRequest, objs []Object, existing map[string][]StoredVersion, owners map[string]string, now, lastAdded, lastSeq int64) *AddPlan {
	plan := PlanAdd(objs, existing, owners, now, lastAdded, lastSeq)
	off := 0
	for _, r := range reqs {
		n := len(r.Objects)
		r.Results = plan.Results[off : off+n : off+n]
		if r.Status != nil {
			(&AddPlan{Results: r.Results}).RecordStatus(objs[off:off+n], r.Status)
		}
		off += n
	}
	return plan
}

// GroupAudit returns the audit records of every request of reqs, once
// their Results are set.
func GroupAudit(reqs []*AddRequest) []AuditRecord {
	var recs []AuditRecord
	for _, r := range reqs {
		if r.Audit != nil {
			recs = append(recs, r.Audit(r)...)
		}
	}
	return recs
}

// Committer groups concurrent AddRequests to one collection into shared
// transactions. It runs no goroutine of its own: the first request to find
// a collection idle commits for everyone queued behind it (leader), and
// hands the role to the next waiting request when its own is done, so no
// request waits for more than the group before it and its own.
type Committer struct {
	g GroupAdder
	// MaxObjects bounds the objects of one group (a request larger than
	// this goes alone); it bounds the memory and the latency a group adds.
	maxObjects int

	mu     sync.Mutex
	queues map[string]*groupQueue
}

type groupQueue struct {
	waiting []*groupWaiter
	busy    bool // a leader is committing
}

type groupWaiter struct {
	req *AddRequest
	// wake receives nil (done), an error, or errLead: lead the next group.
	wake chan error
}

// errLead tells a waiter that it commits the next group.
var errLead = errors.New("lead the next group")

// NewCommitter returns a Committer over g; maxObjects <= 0 means 10,000.
func NewCommitter(g GroupAdder, maxObjects int) *Committer {
	if maxObjects <= 0 {
		maxObjects = 10_000
	}
	return &Committer{g: g, maxObjects: maxObjects, queues: map[string]*groupQueue{}}
}

// Add stores req in collectionID, in a transaction it may share with other
// requests to the same collection, and returns when req is committed
// (req.Results and req.Status are then set) or has failed. A request whose
// ctx ends while it still waits for its group is withdrawn and stores
// nothing; once its group is committing it completes regardless.
func (c *Committer) Add(ctx context.Context, collectionID string, req *AddRequest) error {
	w := &groupWaiter{req: req, wake: make(chan error, 1)}
	c.mu.Lock()
	q := c.queues[collectionID]
	if q == nil {
		q = &groupQueue{}
		c.queues[collectionID] = q
	}
	q.waiting = append(q.waiting, w)
	lead := !q.busy
	if lead {
		q.busy = true
	}
	c.mu.Unlock()
	if !lead {
		select {
		case err := <-w.wake:
			if err != errLead {
				return err
			}
		case <-ctx.Done():
			c.mu.Lock()
			if i := slices.Index(q.waiting, w); i >= 0 {
				// Not taken into a group yet: withdraw. A lead handed to
				// w (sent under c.mu, so it is already here) goes on.
				q.waiting = slices.Delete(q.waiting, i, i+1)
				select {
				case <-w.wake:
					c.passLead(q, collectionID)
				default:
				}
				c.mu.Unlock()
				return ctx.Err()
			}
			c.mu.Unlock()
			// Already in a group: see it through.
			if err := <-w.wake; err != errLead {
				return err
			}
		}
	}
	// Leader: commit groups until this request's is done, then pass the
	// role on.
	for {
		c.mu.Lock()
		group := c.take(q)
		c.mu.Unlock()
		reqs := make([]*AddRequest, len(group))
		mine := false
		for i, g := range group {
			reqs[i] = g.req
			mine = mine || g == w
		}
		// The group is committed even if the leader's client has gone:
		// the others are waiting for it.
		err := c.g.AddGroup(context.WithoutCancel(ctx), collectionID, reqs)
		for _, g := range group {
			if g != w {
				g.wake <- err
			}
		}
		if mine {
			c.mu.Lock()
			c.passLead(q, collectionID)
			c.mu.Unlock()
			return err
		}
	}
}

// passLead makes the first waiting request of q the leader, or marks the
// collection idle. c.mu is held.
func (c *Committer) passLead(q *groupQueue, collectionID string) {
	if len(q.waiting) > 0 {
		q.waiting[0].wake <- errLead
		return
	}
	q.busy = false
	delete(c.queues, collectionID)
}

// Waiting returns the number of requests to collectionID waiting for a
// group.
func (c *Committer) Waiting(collectionID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q := c.queues[collectionID]; q != nil {
		return len(q.waiting)
	}
	return 0
}

// take removes the next group from q: waiting requests in arrival order up
// to maxObjects (at least one). c.mu is held.
func (c *Committer) take(q *groupQueue) []*groupWaiter {
	n, objs := 0, 0
	for n < len(q.waiting) {
		k := len(q.waiting[n].req.Objects)
		if n > 0 && objs+k > c.maxObjects {
			break
		}
		objs += k
		n++
	}
	group := q.waiting[:n:n]
	q.waiting = append([]*groupWaiter(nil), q.waiting[n:]...)
	return group
}
