package taxiiclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// TLSOptions configure the client side of TLS: a CA bundle to verify the
// server with (instead of the system roots) and a client certificate for
// mutual TLS, how national CERTs usually connect to each other.
type TLSOptions struct {
	// CAFile is a PEM bundle of the CAs that may sign the server's
	// certificate; the system roots when empty.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key (PEM).
	CertFile, KeyFile string
}

// NewHTTPClient returns an HTTP client with o's TLS settings (TLS 1.2 at
// least). Timeouts are the Client's, per attempt.
func NewHTTPClient(o TLSOptions) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("a client certificate needs both its certificate and its key file")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	return &http.Client{Transport: tr}, nil
}
