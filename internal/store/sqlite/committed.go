package sqlite

import "sync"

// The bodies of the objects this process's writer committed, kept for the
// search indexer until it has indexed them: it then reads only their rids
// and date_added from objects_added instead of every body again from the
// objects table (a seek and a read of about a kilobyte each, a fifth of
// the indexer's time when a mirror commits tens of thousands of objects at
// a time). What is not there (a commit of another process, bodies beyond
// the bound, the indexer restarted) is read from the store as before.
//
// An entry is found by its rid and counts only if its collection and
// date_added are those of the row the indexer reads: date_added is never
// given twice in a collection, so a body is never taken for another
// object's, even when SQLite gives a deleted object's rid again.

// committedBytes bounds the bodies held: four of a mirror's largest
// commits, as the indexer may trail the writer by more than one.
const committedBytes = 384 << 20

// committedBody is a committed object's body, by rid.
type committedBody struct {
	cid, added int64
	body       []byte
}

// committed is the set of bodies held for the indexer; the writer adds,
// the indexer takes.
type committed struct {
	mu     sync.Mutex
	bodies map[int64]committedBody
	size   int
	limit  int
}

func newCommitted(limit int) *committed {
	return &committed{bodies: map[int64]committedBody{}, limit: limit}
}

// add holds the bodies of a transaction that committed. When they would
// go beyond the bound, those that do not fit are left to the store.
func (c *committed) add(rids []int64, bs []committedBody) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, b := range bs {
		n := len(b.body)
		if c.size+n > c.limit {
			return
		}
		if old, ok := c.bodies[rids[i]]; ok {
			c.size -= len(old.body)
		}
		c.bodies[rids[i]] = b
		c.size += n
	}
}

// take returns the body of the object at rid in collection cid with
// date_added added, if held, and forgets what is held at rid: a body held
// there for another object is of one deleted before the indexer came to
// it.
func (c *committed) take(rid, cid, added int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.bodies[rid]
	if !ok {
		return nil, false
	}
	delete(c.bodies, rid)
	c.size -= len(b.body)
	if b.cid != cid || b.added != added {
		return nil, false
	}
	return b.body, true
}

// empty reports whether no body is held.
func (c *committed) empty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies) == 0
}

// clear forgets every body: the indexer found nothing more to index, so
// those left are of objects deleted before it read them.
func (c *committed) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.bodies)
	c.size = 0
}
