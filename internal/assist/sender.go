package assist

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// PeerSender sends to federation peers over TAXII, with each peer's TLS
// settings and credentials (federation.Runner.Client).
type PeerSender struct {
	Peers interface {
		GetPeer(ctx context.Context, name string) (*store.Peer, error)
	}
	Client func(ctx context.Context, p *store.Peer, remote string) (*taxiiclient.Client, error)
}

// Send implements Sender: the objects are taken when the peer's TAXII
// status completes without failures (duplicates are successes).
func (s *PeerSender) Send(ctx context.Context, peer, remote string, objs []json.RawMessage) error {
	p, err := s.Peers.GetPeer(ctx, peer)
	if err != nil {
		return fmt.Errorf("peer %s: %w", peer, err)
	}
	if remote == "" {
		return fmt.Errorf("peer %s: no remote collection named", peer)
	}
	cl, err := s.Client(ctx, p, remote)
	if err != nil {
		return err
	}
	// The delivery queue retries with its own backoff; an attempt does not
	// stall the clock of the other requests.
	cl.Retry = taxiiclient.Retry{Attempts: -1}
	st, err := cl.Push(ctx, objs)
	if err != nil {
		return fmt.Errorf("peer %s: %w", peer, err)
	}
	if n := max(st.FailureCount, len(st.Failures)); n > 0 {
		msg := ""
		if len(st.Failures) > 0 {
			msg = ": " + st.Failures[0].ID + ": " + st.Failures[0].Message
		}
		return fmt.Errorf("peer %s refused %d objects%s", peer, n, msg)
	}
	return nil
}
