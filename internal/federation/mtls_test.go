package federation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// issue returns a certificate for cn signed by ca (self-signed when ca is
// nil) and its key, in PEM.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, isCA, server bool) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	switch {
	case isCA:
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage, tmpl.ExtKeyUsage = true, true, x509.KeyUsageCertSign, nil
	case server:
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// TestPeerMutualTLS: a peer whose credentials are a client certificate
// (its key sealed in the store) pulls over mutual TLS, the remote mapping
// the certificate to its user; without the certificate the remote
// refuses and the link records the error.
func TestPeerMutualTLS(t *testing.T) {
	remote, local := newNode(t), newTLSNode(t)
	org := remote.org(t, "Local CERT")
	remote.user(t, "mirror-cert", access.RoleRelay, org)
	rc := remote.collection(t, "shared", "mirror-cert")
	ca, caKey, caPEM, _ := issue(t, nil, nil, "national", true, false)
	_, _, srvPEM, srvKey := issue(t, ca, caKey, "server", false, true)
	_, _, cliPEM, cliKey := issue(t, ca, caKey, "mirror-cert", false, false)
	pair, err := tls.X509KeyPair([]byte(srvPEM), []byte(srvKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	ts := httptest.NewUnstartedServer(taxii.NewServer(taxii.Config{Store: remote.st, Auth: access.NewAuthenticator(remote.st, nil), Validator: &stix.Validator{}}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	if _, err := remote.st.AddObjects(t.Context(), rc.ID, []store.Object{{ID: "indicator--00000000-0000-4000-8000-000000000001", Type: "indicator", SpecVersion: "2.1",
		Version: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), VersionRaw: "2025-01-01T00:00:00.000Z", Raw: indicator(1, ""), Submitter: org}}, nil); err != nil {
		t.Fatal(err)
	}

	peerOrg := local.org(t, "Remote CERT")
	mirror := local.collection(t, "mirror")
	if err := local.sq.SetPartyGrant(t.Context(), mirror.ID, store.GrantOrg, peerOrg, true, true); err != nil {
		t.Fatal(err)
	}
	sealer := testSealer(t)
	add := func(name, cert, key string) {
		var secret []byte
		if key != "" {
			secret, _ = sealer.Seal(name, federation.Credentials{ClientKey: key})
		}
		if err := local.sq.CreatePeer(t.Context(), &store.Peer{Name: name, URL: ts.URL + "/api/", Organisation: peerOrg, Secret: secret, CA: caPEM, Cert: cert}); err != nil {
			t.Fatal(err)
		}
		if err := local.sq.AddLink(t.Context(), &store.Link{ID: name + "-in", Peer: name, Direction: store.LinkPull, Local: mirror.ID, Remote: rc.ID}); err != nil {
			t.Fatal(err)
		}
	}
	add("mtls", cliPEM, cliKey)
	add("anonymous", "", "")
	srv := taxii.NewServer(taxii.Config{Store: local.sq, Auth: access.NewAuthenticator(local.sq, nil), Validator: &stix.Validator{}})
	r := &federation.Runner{Store: local.sq, Sealer: sealer, Check: srv.Check, Holder: "test"}
	res, err := r.SyncPeer(t.Context(), "mtls")
	if err != nil || res[0].Err != nil || res[0].Pull.Added != 1 {
		t.Fatalf("pull over mutual TLS: %+v %v", res, err)
	}
	res, err = r.SyncPeer(t.Context(), "anonymous")
	if err != nil || res[0].Err == nil {
		t.Fatalf("pull without a certificate: %+v %v", res, err)
	}
	links, _ := local.sq.Links(t.Context(), "anonymous")
	if links[0].LastError == "" {
		t.Error("the refused pull recorded no error")
	}
}
