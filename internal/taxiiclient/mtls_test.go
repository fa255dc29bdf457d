package taxiiclient_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// testCA is a certificate authority for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newCA(t *testing.T, dir, name string) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+"-ca.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return &testCA{cert: cert, key: key, file: file}
}

// issue writes a certificate for cn signed by the CA (a server
// certificate for 127.0.0.1 when server is true) and returns its files.
func (ca *testCA) issue(t *testing.T, dir, cn string, server bool) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, cn+"-cert.pem"), filepath.Join(dir, cn+"-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestMutualTLS: the client verifies the server with a custom CA bundle
// and presents a client certificate; the server maps a verified
// certificate's subject CN to the user of that name. A certificate from
// another CA, or naming no user, authenticates nobody.
func TestMutualTLS(t *testing.T) {
	e := newEnv(t)
	e.user(t, "peer-cert", "relay")
	c := e.collection(t, "mtls", []string{"peer-cert"}, []string{"peer-cert"})
	dir := t.TempDir()
	ca := newCA(t, dir, "national")
	other := newCA(t, dir, "rogue")
	srvCert, srvKey := ca.issue(t, dir, "server", true)

	ts := httptest.NewUnstartedServer(taxii.NewServer(taxii.Config{Store: e.st, Auth: access.NewAuthenticator(e.st, nil), Validator: &stix.Validator{}}))
	pair, err := tls.LoadX509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	ts.StartTLS()
	t.Cleanup(ts.Close)

	client := func(o taxiiclient.TLSOptions) *taxiiclient.Client {
		hc, err := taxiiclient.NewHTTPClient(o)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := taxiiclient.Dial(t.Context(), ts.URL+"/taxii2/", c.ID, func(cl *taxiiclient.Client) {
			cl.HTTP, cl.Retry = hc, taxiiclient.Retry{Attempts: -1}
		})
		if err != nil {
			t.Fatalf("dial with %+v: %v", o, err)
		}
		return cl
	}
	cf, kf := ca.issue(t, dir, "peer-cert", false)
	cl := client(taxiiclient.TLSOptions{CAFile: ca.file, CertFile: cf, KeyFile: kf})
	st, err := cl.Push(t.Context(), objsN(3))
	if err != nil || st.SuccessCount != 3 {
		t.Fatalf("push with a client certificate: %+v, %v", st, err)
	}
	cols, err := cl.Collections(t.Context())
	if err != nil || len(cols) != 1 || !cols[0].CanWrite {
		t.Errorf("collections seen through the certificate's user: %+v, %v", cols, err)
	}

	// Refused: no certificate, a certificate of another CA, a CN that is
	// no user. (Dial reads discovery, which needs authentication too.)
	nf, nk := ca.issue(t, dir, "nobody", false)
	rf, rk := other.issue(t, dir, "peer-cert", false)
	for name, o := range map[string]taxiiclient.TLSOptions{
		"no certificate":    {CAFile: ca.file},
		"unknown user":      {CAFile: ca.file, CertFile: nf, KeyFile: nk},
		"another authority": {CAFile: ca.file, CertFile: rf, KeyFile: rk},
	} {
		hc, _ := taxiiclient.NewHTTPClient(o)
		_, err := taxiiclient.Dial(t.Context(), ts.URL+"/taxii2/", c.ID, func(cl *taxiiclient.Client) {
			cl.HTTP, cl.Retry = hc, taxiiclient.Retry{Attempts: -1}
		})
		var te *taxiiclient.Error
		if name == "another authority" {
			// The TLS handshake itself fails: the server does not trust the CA.
			if err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		if !errors.As(err, &te) || te.Status != http.StatusUnauthorized {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The server is verified against the CA bundle: the system roots do
	// not know it.
	hc, _ := taxiiclient.NewHTTPClient(taxiiclient.TLSOptions{CertFile: cf, KeyFile: kf})
	if _, err := taxiiclient.Dial(t.Context(), ts.URL+"/taxii2/", c.ID, func(cl *taxiiclient.Client) { cl.HTTP, cl.Retry = hc, taxiiclient.Retry{Attempts: -1} }); err == nil {
		t.Error("server certificate accepted without its CA")
	}
}
