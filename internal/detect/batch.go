package detect

import (
	"time"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// decoder turns one line into an observation. It returns nil, nil for lines
// that carry no event (comments, records without observables). Decoders are
// shared by workers: all per-line scratch space lives in the arena.
type decoder interface {
	decode(line string, a *arena) (*pattern.Observation, error)
}

// batch is a run of consecutive lines of one source, decoded and matched by
// one worker.
type batch struct {
	src   string // for messages: a file name, "stdin", "nats:STREAM"
	first int64  // line number of lines[0]
	lines []string
	dec   decoder
	// segs switch decoders inside the batch (a Zeek header in the middle
	// of a stream's messages): from line segs[i].at on, segs[i].dec.
	segs []decSeg
	// pre are observations decoded by the source itself (STIX input, whose
	// objects may refer to earlier lines); prePos are their line numbers.
	pre    []*pattern.Observation
	prePos []int64
	// lane and msgs: the stream positions of the batch's messages, which
	// are committed with its contribution; msgLine[i] is the index in lines
	// of the first line of msgs[i].
	lane    *lane
	msgs    []msgRef
	msgLine []int
	// dead, when set, gets the lines that cannot be decoded (dead
	// letters), before the batch's messages are acknowledged.
	dead func(seq uint64, line string, reason error)
}

type decSeg struct {
	at  int
	dec decoder
}

// seqOf is the stream position of the message holding line i (0 when the
// batch has none).
func (b *batch) seqOf(i int) uint64 {
	var seq uint64
	for j, first := range b.msgLine {
		if first > i {
			break
		}
		seq = b.msgs[j].seq
	}
	return seq
}

// arena hands out objects from slabs owned by one worker. Slabs are never
// reused: an observation kept by the Matcher keeps its slab alive.
type arena struct {
	scos []pattern.SCO
	nts  []netTraffic
	objs []pattern.Object
	obs  []pattern.Observation
	mark int // start of the current observation's objects in objs

	// scratch for decoders, reused line after line
	fields []string
	strs   []string
	zeek   zeekRec
}

const slab = 512

func (a *arena) sco(typ, key, value string) *pattern.SCO {
	if len(a.scos) == cap(a.scos) {
		a.scos = make([]pattern.SCO, 0, slab)
	}
	a.scos = a.scos[:len(a.scos)+1]
	s := &a.scos[len(a.scos)-1]
	s.T, s.Key, s.Value = typ, key, value
	return s
}

func (a *arena) netTraffic() *netTraffic {
	if len(a.nts) == cap(a.nts) {
		a.nts = make([]netTraffic, 0, slab)
	}
	a.nts = a.nts[:len(a.nts)+1]
	return &a.nts[len(a.nts)-1]
}

// begin starts collecting the objects of one observation.
func (a *arena) begin() {
	if cap(a.objs)-len(a.objs) < 16 {
		a.objs = make([]pattern.Object, 0, slab*4)
	}
	a.mark = len(a.objs)
}

// add appends an object to the current observation.
func (a *arena) add(o pattern.Object) {
	if len(a.objs) == cap(a.objs) {
		cur := a.objs[a.mark:]
		a.objs = make([]pattern.Object, len(cur), max(slab*4, 2*len(cur)))
		copy(a.objs, cur)
		a.mark = 0
	}
	a.objs = append(a.objs, o)
}

// end returns the observation of the objects added since begin, or nil
// when there are none.
func (a *arena) end(t time.Time) *pattern.Observation {
	objs := a.objs[a.mark:len(a.objs):len(a.objs)]
	if len(objs) == 0 {
		return nil
	}
	if len(a.obs) == cap(a.obs) {
		a.obs = make([]pattern.Observation, 0, slab)
	}
	a.obs = a.obs[:len(a.obs)+1]
	o := &a.obs[len(a.obs)-1]
	o.FirstObserved, o.LastObserved, o.NumberObserved, o.Objects = t, t, 1, objs
	return o
}

// addIP adds an address object for s (IPv4 or IPv6) with key, or nothing
// when s is not an address.
func (a *arena) addIP(s, key string) *pattern.SCO {
	t := fastIPType(s)
	if t == "" {
		return nil
	}
	o := a.sco(t, key, s)
	a.add(o)
	return o
}

// addDomain adds a domain-name object unless s is empty or not a name.
func (a *arena) addDomain(s string) {
	if s == "" || !plausibleDomain(s) {
		return
	}
	a.add(a.sco("domain-name", "", s))
}

// plausibleDomain filters out what DNS logs carry besides names (TXT
// records, "<unknown type=..>" markers).
func plausibleDomain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c <= ' ', c == '<', c == '>', c == '"', c == '\\', c == '/', c == 0x7f:
			return false
		}
	}
	return true
}

// addFlow adds src and dst addresses and the network-traffic linking them.
func (a *arena) addFlow(src, dst string, sport, dport int64, hasPorts bool, protocols []string) *netTraffic {
	s := a.addIP(src, keySrc)
	d := a.addIP(dst, keyDst)
	if s == nil && d == nil {
		return nil
	}
	n := a.netTraffic()
	n.src, n.dst, n.srcPort, n.dstPort, n.hasPorts, n.protocols = s, d, sport, dport, hasPorts, protocols
	a.add(n)
	return n
}
