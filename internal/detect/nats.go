package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSSource consumes a JetStream stream through a durable pull consumer.
// Detectors using the same Durable share the messages; a message is acked
// only once its events are matched and their sightings stored, so
// messages of a detector that dies are delivered again (at-least-once).
// A message holds one record or several, one per line.
type NATSSource struct {
	URL     string // nats://127.0.0.1:4222 when empty
	Stream  string
	Durable string
	// Subject filters the stream (all its subjects when empty).
	Subject string
	// AckWait is how long JetStream waits for an ack before delivering a
	// message again (1 minute); it must exceed the detector's Flush.
	AckWait time.Duration
	// MaxAckPending bounds the messages held unacknowledged (100000).
	MaxAckPending int
	// Fetch is how many messages are fetched at a time (1000).
	Fetch int
	Opts  InputOptions
	// Options for the connection (credentials, TLS...).
	ConnOptions []nats.Option
}

// Name implements Source.
func (s *NATSSource) Name() string { return "nats:" + s.Stream }

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
	n := s.Fetch
	if n <= 0 {
		n = 1000
	}
	f := newFramer(s.Name(), s.Opts, p)
	f.manual = true
	for ctx.Err() == nil {
		msgs, err := cons.Fetch(n, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.log.Warn("NATS fetch failed; retrying", "err", err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for msg := range msgs.Messages() {
			data := msg.Data()
			for len(data) > 0 {
				line, rest, _ := bytes.Cut(data, []byte{'\n'})
				if err := f.addLine(ctx, line); err != nil {
					return err
				}
				data = rest
			}
			f.ack(func() { msg.Ack() })
			if md, err := msg.Metadata(); err == nil {
				p.d.pending.Store(int64(md.NumPending))
			}
			if len(f.buf) >= batchBytes || len(f.pre) >= 256 {
				if err := f.flush(ctx); err != nil {
					return err
				}
			}
		}
		if err := msgs.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) {
			p.log.Warn("NATS fetch ended early", "err", err)
		}
		if err := f.flush(ctx); err != nil {
			return err
		}
	}
	return ctx.Err()
}
