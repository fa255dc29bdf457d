package detect

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSSource consumes a JetStream stream through a durable pull consumer.
// Detectors using the same Durable share the messages. Every record is
// counted exactly once with a sink that has transactions (a local store):
// the stream positions of the messages a write counted are committed with
// its counts, a message is acknowledged only after that commit, and a
// message delivered again whose position is stored is acknowledged
// without being counted. Acknowledgement deadlines are extended while a
// write is slow. A message holds one record or several, one per line.
//
// Zeek TSV headers ('#' lines) seen on a subject are kept in a JetStream
// key-value bucket (HeaderBucket), so that a detector started after the
// header was published decodes the lines that follow it. Records that
// cannot be decoded are published to DeadLetter with the reason.
type NATSSource struct {
	URL     string // nats://127.0.0.1:4222 when empty
	Stream  string
	Durable string
	// Subject filters the stream (all its subjects when empty).
	Subject string
	// AckWait is how long JetStream waits for an ack before delivering a
	// message again (1 minute); deadlines are extended every AckWait/3
	// while messages wait for a write.
	AckWait time.Duration
	// MaxAckPending bounds the messages held unacknowledged (100000).
	MaxAckPending int
	// Fetch is how many messages are fetched at a time (1000).
	Fetch int
	// DeadLetter is the subject records that cannot be decoded are
	// published to, with headers Mitra-Reason, Mitra-Stream,
	// Mitra-Subject and Mitra-Seq ("mitra.detect.deadletter.<Stream>"
	// when empty). Give it a stream of its own to keep them.
	DeadLetter string
	// HeaderBucket is the key-value bucket of Zeek TSV headers
	// ("mitra_detect_headers" when empty).
	HeaderBucket string
	// HeaderWait is how many deliveries a TSV line waits for its header
	// to be known before it is dead-lettered (10).
	HeaderWait int
	Opts       InputOptions
	// Options for the connection (credentials, TLS...).
	ConnOptions []nats.Option
}

// Name implements Source.
func (s *NATSSource) Name() string { return "nats:" + s.Stream }

// natsRun is the state of one run of a NATSSource.
type natsRun struct {
	s       *NATSSource
	p       *pipeline
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	lane    *lane
	framers map[string]*subjectFramer
	dlq     string
}

// subjectFramer frames one subject's messages, with the TSV headers of
// that subject by stream position.
type subjectFramer struct {
	f       *framer
	headers []tsvHeader // known headers, by seq
	current uint64      // seq of the header the framer holds (0 none)
	checked bool        // the bucket was read during this fetch
}

// tsvHeader is a Zeek header block and the position of its message.
type tsvHeader struct {
	Seq   uint64   `json:"seq"`
	Lines []string `json:"lines"`
}

// maxHeaders is how many headers per subject the bucket keeps.
const maxHeaders = 8

func (s *NATSSource) run(ctx context.Context, p *pipeline) error {
	if s.Stream == "" || s.Durable == "" {
		return errors.New("NATS source needs a stream and a durable consumer name")
	}
	url := s.URL
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("mitra detect")}, s.ConnOptions...)...)
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	// Acks are sent after sightings are stored, which may be after this
	// function returns: close the connection when the detector is done.
	p.atEnd(func() { nc.Drain() })
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, s.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Stream, err)
	}
	ackWait := s.AckWait
	if ackWait <= 0 {
		ackWait = time.Minute
	}
	maxPending := s.MaxAckPending
	if maxPending <= 0 {
		maxPending = 100_000
	}
	cc := jetstream.ConsumerConfig{
		Durable:       s.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: maxPending,
		FilterSubject: s.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", s.Durable, err)
	}
	bucket := s.HeaderBucket
	if bucket == "" {
		bucket = "mitra_detect_headers"
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, Description: "Zeek TSV headers seen by Mitra detectors"})
	if err != nil {
		// JSON telemetry needs no headers; TSV lines without a header
		// this detector saw itself wait and then go to dead letters.
		p.log.Warn("Zeek header bucket unavailable: TSV headers are not shared between detectors", "bucket", bucket, "err", err)
		kv = nil
	}
	r := &natsRun{s: s, p: p, nc: nc, js: js, kv: kv, framers: map[string]*subjectFramer{},
		lane: &lane{key: "detect/" + p.d.cfg.Identity + "/" + s.Stream + "/" + s.Durable, ackWait: ackWait},
		dlq:  s.DeadLetter}
	if r.dlq == "" {
		r.dlq = "mitra.detect.deadletter." + s.Stream
	}
	if err := p.d.refreshLane(ctx, r.lane); err != nil {
		return fmt.Errorf("read stream positions: %w", err)
	}
	p.d.addLane(r.lane)
	n := s.Fetch
	if n <= 0 {
		n = 1000
	}
	var infoAt time.Time
	for ctx.Err() == nil {
		if time.Since(infoAt) > time.Second {
			if ci, err := cons.Info(ctx); err == nil {
				r.lane.floor.Store(ci.AckFloor.Stream)
				infoAt = time.Now()
			}
		}
		msgs, err := cons.Fetch(n, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.log.Warn("NATS fetch failed; retrying", "err", err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		refreshed := false
		for _, sf := range r.framers {
			sf.checked = false
		}
		for msg := range msgs.Messages() {
			md, err := msg.Metadata()
			if err != nil {
				p.log.Warn("NATS message without metadata; left for redelivery", "err", err)
				continue
			}
			p.d.pending.Store(int64(md.NumPending))
			seq := md.Sequence.Stream
			if md.NumDelivered > 1 {
				p.d.redelivered.Add(1)
				// Delivered again: perhaps counted by a write whose
				// acknowledgement was lost (a crash, a slow detector).
				if !refreshed {
					if err := p.d.refreshLane(ctx, r.lane); err != nil && ctx.Err() == nil {
						p.log.Warn("reading stream positions failed", "err", err)
					}
					refreshed = true
				}
				if r.lane.applied(seq) {
					p.d.duplicates.Add(1)
					msg.Ack()
					continue
				}
			}
			if err := r.message(ctx, msg, md); err != nil {
				return err
			}
		}
		if err := msgs.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) {
			p.log.Warn("NATS fetch ended early", "err", err)
		}
		for _, sf := range r.framers {
			if err := sf.f.flush(ctx); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// framer returns the framer of a subject.
func (r *natsRun) framer(subject string) *subjectFramer {
	sf := r.framers[subject]
	if sf == nil {
		f := newFramer(r.s.Name()+":"+subject, r.s.Opts, r.p)
		f.manual, f.lane = true, r.lane
		f.dead = func(seq uint64, line string, reason error) { r.deadLetter(subject, seq, line, reason) }
		sf = &subjectFramer{f: f}
		r.framers[subject] = sf
	}
	return sf
}

// message frames one message.
func (r *natsRun) message(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata) error {
	seq, subject := md.Sequence.Stream, msg.Subject()
	sf := r.framer(subject)
	data := msg.Data()
	// Its own header lines, if any, are kept for other detectors before
	// the message can be acknowledged.
	var hdr []string
	hasData := false
	for rest := data; len(rest) > 0; {
		line, more, _ := bytes.Cut(rest, []byte{'\n'})
		rest = more
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) > 0 && line[0] == '#' {
			if !hasData {
				hdr = append(hdr, string(line))
			}
		} else if len(bytes.TrimSpace(line)) > 0 {
			hasData = true
		}
	}
	isHeader := slices.ContainsFunc(hdr, func(l string) bool { return strings.HasPrefix(l, "#fields") })
	if isHeader {
		h := tsvHeader{Seq: seq, Lines: hdr}
		sf.add(h)
		if err := r.publishHeader(ctx, subject, h); err != nil {
			// Not acknowledged: delivered again, and kept then.
			r.p.log.Warn("keeping a Zeek header failed; the message will be delivered again", "subject", subject, "err", err)
			msg.NakWithDelay(time.Second)
			return nil
		}
		sf.current = seq
	} else if hasData && needsHeader(data) {
		// TSV lines: the header in force at this position.
		h, err := r.headerFor(ctx, sf, subject, seq)
		if err != nil && ctx.Err() == nil {
			r.p.log.Warn("reading Zeek headers failed", "subject", subject, "err", err)
		}
		switch {
		case h != nil && h.Seq != sf.current:
			sf.f.zh = nil
			for _, l := range h.Lines {
				if err := sf.f.header(ctx, l); err != nil {
					return err
				}
			}
			sf.current = h.Seq
		case h == nil:
			wait := r.s.HeaderWait
			if wait <= 0 {
				wait = 10
			}
			if int(md.NumDelivered) < wait {
				// The detector holding the header may not have kept it yet.
				msg.NakWithDelay(time.Second)
				return nil
			}
			for rest := data; len(rest) > 0; {
				line, more, _ := bytes.Cut(rest, []byte{'\n'})
				rest = more
				if len(bytes.TrimSpace(line)) > 0 {
					r.p.malformed(sf.f.src, int64(seq), errNoHeader)
					r.deadLetter(subject, seq, string(line), errNoHeader)
				}
			}
			msg.Ack()
			return nil
		}
	}
	sf.f.message(msgRef{seq: seq, lane: r.lane,
		ack:      func() { msg.Ack() },
		nak:      func() { msg.Nak() },
		progress: func() { msg.InProgress() },
	})
	for rest := data; len(rest) > 0; {
		line, more, _ := bytes.Cut(rest, []byte{'\n'})
		rest = more
		if err := sf.f.addLine(ctx, line); err != nil {
			return err
		}
	}
	if len(sf.f.buf) >= batchBytes || len(sf.f.pre) >= 256 {
		return sf.f.flush(ctx)
	}
	return nil
}

var errNoHeader = errors.New("zeek TSV line without a #fields header on its subject")

// needsHeader: the message has lines that are neither headers nor JSON.
func needsHeader(data []byte) bool {
	for rest := data; len(rest) > 0; {
		line, more, _ := bytes.Cut(rest, []byte{'\n'})
		rest = more
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && t[0] != '{' {
			return true
		}
	}
	return false
}

func (sf *subjectFramer) add(h tsvHeader) {
	i, found := slices.BinarySearchFunc(sf.headers, h.Seq, func(a tsvHeader, s uint64) int { return cmp.Compare(a.Seq, s) })
	if !found {
		sf.headers = slices.Insert(sf.headers, i, h)
	}
}

// headerFor is the latest header at or before seq, reading the bucket for
// those other detectors kept.
func (r *natsRun) headerFor(ctx context.Context, sf *subjectFramer, subject string, seq uint64) (*tsvHeader, error) {
	find := func() *tsvHeader {
		var best *tsvHeader
		for i := range sf.headers {
			if sf.headers[i].Seq <= seq {
				best = &sf.headers[i]
			}
		}
		return best
	}
	h := find()
	if sf.checked {
		return h, nil
	}
	// Once per fetch and subject: headers other detectors kept.
	stored, err := r.loadHeaders(ctx, subject)
	if err != nil {
		return h, err
	}
	sf.checked = true
	for _, x := range stored {
		sf.add(x)
	}
	return find(), nil
}

func headerKey(stream, subject string) string {
	var b strings.Builder
	b.WriteString(stream)
	b.WriteByte('.')
	for _, c := range subject {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (r *natsRun) loadHeaders(ctx context.Context, subject string) ([]tsvHeader, error) {
	hs, _, err := r.loadHeadersRev(ctx, subject)
	return hs, err
}

func (r *natsRun) loadHeadersRev(ctx context.Context, subject string) ([]tsvHeader, uint64, error) {
	if r.kv == nil {
		return nil, 0, nil
	}
	e, err := r.kv.Get(ctx, headerKey(r.s.Stream, subject))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var hs []tsvHeader
	if err := json.Unmarshal(e.Value(), &hs); err != nil {
		return nil, 0, fmt.Errorf("header bucket %s: %w", headerKey(r.s.Stream, subject), err)
	}
	return hs, e.Revision(), nil
}

// publishHeader adds h to the subject's headers in the bucket (compare
// and swap on the revision, so detectors do not lose each other's).
func (r *natsRun) publishHeader(ctx context.Context, subject string, h tsvHeader) error {
	if r.kv == nil {
		return nil
	}
	key := headerKey(r.s.Stream, subject)
	for range 20 {
		hs, rev, err := r.loadHeadersRev(ctx, subject)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(hs, func(x tsvHeader) bool { return x.Seq == h.Seq }) {
			return nil
		}
		hs = append(hs, h)
		slices.SortFunc(hs, func(a, b tsvHeader) int { return cmp.Compare(a.Seq, b.Seq) })
		if len(hs) > maxHeaders {
			hs = hs[len(hs)-maxHeaders:]
		}
		b, _ := json.Marshal(hs)
		if rev == 0 {
			_, err = r.kv.Create(ctx, key, b)
		} else {
			_, err = r.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return errors.New("header bucket: too many concurrent updates")
}

// deadLetter publishes a record that cannot be decoded, with its reason.
// With a stream on the subject the publication is acknowledged (and
// de-duplicated by Nats-Msg-Id when the message is delivered again);
// without one it is a plain NATS message, flushed before going on.
func (r *natsRun) deadLetter(subject string, seq uint64, line string, reason error) {
	m := nats.NewMsg(r.dlq)
	m.Data = []byte(line)
	m.Header.Set("Mitra-Reason", reason.Error())
	m.Header.Set("Mitra-Stream", r.s.Stream)
	m.Header.Set("Mitra-Subject", subject)
	m.Header.Set("Mitra-Seq", strconv.FormatUint(seq, 10))
	sum := sha256.Sum256([]byte(line))
	m.Header.Set(jetstream.MsgIDHeader, r.s.Stream+"-"+strconv.FormatUint(seq, 10)+"-"+hex.EncodeToString(sum[:8]))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(ctx, m); err == nil {
		return
	} else if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		r.p.log.Warn("dead letter not stored in a stream", "subject", r.dlq, "err", err)
	}
	if err := r.nc.PublishMsg(m); err == nil {
		r.nc.FlushWithContext(ctx)
	}
}

// refreshLane reads the lane's stored positions.
func (d *Detector) refreshLane(ctx context.Context, l *lane) error {
	return d.cfg.Sink.Update(ctx, func(ctx context.Context, tx SinkTx) error {
		raw, err := tx.Cursor(ctx, l.key)
		if err != nil {
			return err
		}
		c, err := parseCursor(raw)
		if err != nil {
			return err
		}
		l.remember(c)
		return nil
	})
}
