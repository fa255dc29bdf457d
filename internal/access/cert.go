package access

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/mitra-cert/mitra/internal/store"
)

// Certificate authenticates a client certificate the TLS layer has
// already verified against the configured client CAs (mutual TLS, how
// national CERTs connect to each other). The certificate's subject common
// name is the name of the user it stands for, who acts with that user's
// organisation and role; a certificate naming no user is refused.
func (a *Authenticator) Certificate(ctx context.Context, cert *x509.Certificate) (*Principal, error) {
	name := cert.Subject.CommonName
	if name == "" {
		return nil, ErrUnauthenticated
	}
	u, err := a.store.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return a.principal(ctx, u, u.Role, "")
}
