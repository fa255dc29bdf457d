package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
)

// The federation end-to-end test: two national CERTs (A and B) and a
// regional hub (H), three `mitra serve` processes over mutual TLS. The hub
// pulls each CERT's collections and each CERT pulls the hub's, every link
// following the other side's change feed; each side maps the other's
// client certificate to a peer user. Organisations carry the same identity
// ids on every server (as partners agree on them), so recipients cross the
// border.

// e2eIdentity is a fixed identity id.
func e2eIdentity(n int) string { return fmt.Sprintf("identity--e2e00000-0000-4000-8000-%012d", n) }

var (
	idA1, idA2     = e2eIdentity(11), e2eIdentity(12) // organisations of country A
	idB1, idB2     = e2eIdentity(21), e2eIdentity(22) // of country B
	idH1, idH2     = e2eIdentity(31), e2eIdentity(32) // members of the hub
	idHub          = e2eIdentity(30)                  // the hub, as CERT A and CERT B know it
	idCA, idCB     = e2eIdentity(10), e2eIdentity(20) // CERT A and CERT B, as the hub knows them
	e2ePassword    = "e2e-password-1"
	e2ePeerKey     = base64.StdEncoding.EncodeToString([]byte("fedflow-e2e-peer-key-32-bytes!!!"))
	e2eCollections = []string{"shared", "group1", "group2"}
)

var e2eTLP = map[string]string{
	"clear":        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
	"green":        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
	"amber":        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
	"amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
	"red":          "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

// e2eCA issues the certificates of the three servers and their clients.
type e2eCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newE2ECA(t *testing.T) *e2eCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e federation CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(2 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &e2eCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a certificate for cn (a server's for 127.0.0.1, else a
// client's) and its key, in PEM.
func (ca *e2eCA) issue(t *testing.T, cn string, server bool) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// e2eServer is one of the three servers.
type e2eServer struct {
	name string
	dir  string
	addr string // 127.0.0.1:port, chosen before the server starts
	cols map[string]string
	proc *exec.Cmd
	logs *logBuffer
}

func (s *e2eServer) api() string { return "https://" + s.addr + "/api/" }

// freeAddr picks a loopback port for a server whose address its peers
// must know before it starts.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// e2eOrg is an organisation with one analyst user named after it.
type e2eOrg struct{ id, name, user string }

// e2ePeer is a peer of a server: the other server, its organisation here,
// and the client certificate this server presents to it.
type e2ePeer struct {
	name      string
	remote    *e2eServer
	org       string
	cert, key string
}

// setup writes a server's store before it starts: organisations with
// their users, the peer users (mapped from client certificates by CN),
// two sharing groups, the three collections, the peers and their links
// (pull each remote collection into the local one of the same name).
func (s *e2eServer) setup(t *testing.T, orgs []e2eOrg, peerUsers map[string]string, groups map[string][]string, peers []e2ePeer) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, s.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	for _, o := range orgs {
		must(st.CreateOrganisation(ctx, &store.Organisation{ID: o.id, Name: o.name}))
		if o.user != "" {
			_, err := access.CreateUser(ctx, st, o.user, e2ePassword, access.RoleAnalyst, o.id)
			must(err)
		}
	}
	for user, org := range peerUsers {
		_, err := access.CreateUser(ctx, st, user, e2ePassword, access.RoleAnalyst, org)
		must(err)
	}
	gids := map[string]string{}
	for name, members := range groups {
		g := &store.Group{Name: name, Orgs: members}
		must(st.CreateGroup(ctx, g))
		gids[name] = g.ID
	}
	s.cols = map[string]string{}
	for _, alias := range e2eCollections {
		c := &store.Collection{Title: alias, Alias: alias}
		must(st.CreateCollection(ctx, c))
		s.cols[alias] = c.ID
		if alias == "shared" {
			for _, o := range orgs {
				must(st.SetPartyGrant(ctx, c.ID, store.GrantOrg, o.id, true, true))
			}
		} else {
			must(st.SetPartyGrant(ctx, c.ID, store.GrantGroup, gids[alias], true, true))
		}
	}
	sealer, err := federation.NewSealer(mustKey(t))
	must(err)
	for _, p := range peers {
		secret, err := sealer.Seal(p.name, federation.Credentials{ClientKey: p.key})
		must(err)
		must(st.CreatePeer(ctx, &store.Peer{Name: p.name, URL: p.remote.api(), Organisation: p.org, Secret: secret, CA: e2eCAPEM, Cert: p.cert}))
		for _, alias := range e2eCollections {
			must(st.AddLink(ctx, &store.Link{ID: p.name + "-" + alias, Peer: p.name, Direction: store.LinkPull, Local: s.cols[alias], Remote: p.remote.cols[alias]}))
		}
	}
}

var e2eCAPEM string

func mustKey(t *testing.T) []byte {
	k, err := base64.StdEncoding.DecodeString(e2ePeerKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// start runs `mitra serve` with HTTPS, client certificates verified
// against the CA, and the peer key.
func (s *e2eServer) start(t *testing.T, bin, certFile, keyFile, caFile string) {
	cmd := exec.Command(bin, "serve", "--addr", s.addr, "--data", s.dir, "--log-level", "warn",
		"--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", caFile)
	cmd.Env = append(os.Environ(), "MITRA_ADMIN_PASSWORD=admin-password-1", "MITRA_PEER_KEY="+e2ePeerKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.proc, s.logs = cmd, &logBuffer{}
	found := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs.WriteString(sc.Text() + "\n")
			if listenRE.MatchString(sc.Text()) {
				select {
				case found <- struct{}{}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start:\n%s", s.name, s.logs)
	}
}

// e2eHTTP is a client of the servers trusting the test CA.
type e2eHTTP struct {
	t  *testing.T
	hc *http.Client
}

func (c *e2eHTTP) do(method, url, user string, body []byte) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.SetBasicAuth(user, e2ePassword)
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	if body != nil {
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// post adds objects to a collection as user and checks they all succeeded.
func (c *e2eHTTP) post(s *e2eServer, col, user string, objs ...map[string]any) {
	c.t.Helper()
	body, _ := json.Marshal(map[string]any{"objects": objs})
	code, b := c.do("POST", s.api()+"collections/"+s.cols[col]+"/objects/", user, body)
	var st struct {
		Status       string `json:"status"`
		SuccessCount int    `json:"success_count"`
	}
	_ = json.Unmarshal(b, &st)
	if code != http.StatusAccepted || st.SuccessCount != len(objs) {
		c.t.Fatalf("%s: POST to %s as %s: %d %s", s.name, col, user, code, b)
	}
}

// read is what user reads of a collection: the latest version of each
// object, by id (nil when the collection is not readable).
func (c *e2eHTTP) read(s *e2eServer, col, user string) map[string]map[string]any {
	c.t.Helper()
	code, b := c.do("GET", s.api()+"collections/"+s.cols[col]+"/objects/", user, nil)
	out := map[string]map[string]any{}
	if code != http.StatusOK {
		return out
	}
	var env struct {
		Objects []map[string]any `json:"objects"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		c.t.Fatalf("%s: read %s as %s: %v", s.name, col, user, err)
	}
	for _, o := range env.Objects {
		out[o["id"].(string)] = o
	}
	return out
}

// e2eIndicator is an indicator by org at a TLP level with recipients.
func e2eIndicator(n int, org, tlp string, modified string, extra map[string]any, recipients ...string) map[string]any {
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": fmt.Sprintf("indicator--e2e00000-0000-4000-9000-%012d", n),
		"created": "2026-01-01T00:00:00.000Z", "modified": modified, "created_by_ref": org,
		"pattern": fmt.Sprintf("[ipv4-addr:value = '203.0.113.%d']", n), "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
		"object_marking_refs": []string{e2eTLP[tlp]}}
	if len(recipients) > 0 {
		o[access.RecipientsProperty] = recipients
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

const e2eV1, e2eV2 = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"

// TestFederationEndToEnd: three `mitra serve` processes (CERT A, CERT B,
// a regional hub) federated both ways through the hub over mutual TLS.
// Every organisation on every server reads exactly what TLP, recipients and
// sharing groups allow, after adds, a new version, a revocation and a
// delete; a content hash shared with `mitra hash share` in country A is
// matchable in country B only by the organisation it was released to; a
// sighting and a verdict travel back to country A as the anonymous
// identity, and a RED sighting never leaves its server.
func TestFederationEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three servers; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := newE2ECA(t)
	e2eCAPEM = ca.pem
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, []byte(ca.pem), 0o600); err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey := ca.issue(t, "127.0.0.1", true)
	certFile, keyFile := filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv-key.pem")
	os.WriteFile(certFile, []byte(srvCert), 0o600)
	os.WriteFile(keyFile, []byte(srvKey), 0o600)

	A := &e2eServer{name: "cert-a", dir: filepath.Join(dir, "a"), addr: freeAddr(t)}
	B := &e2eServer{name: "cert-b", dir: filepath.Join(dir, "b"), addr: freeAddr(t)}
	H := &e2eServer{name: "hub", dir: filepath.Join(dir, "h"), addr: freeAddr(t)}
	// Client certificates: CN is the peer user on the other side.
	hubOnA, hubOnAKey := ca.issue(t, "peer-hub", false)
	aOnHub, aOnHubKey := ca.issue(t, "peer-cert-a", false)
	bOnHub, bOnHubKey := ca.issue(t, "peer-cert-b", false)

	// The CERTs first, so that the hub's setup knows their collection ids.
	func() {
		A.setup(t, []e2eOrg{{idA1, "A Energy", "a1"}, {idA2, "A Bank", "a2"}, {idHub, "Regional Hub", ""}},
			map[string]string{"peer-hub": idHub},
			map[string][]string{"group1": {idA1, idHub}, "group2": {idA2, idHub}}, nil)
		B.setup(t, []e2eOrg{{idB1, "B Telecom", "b1"}, {idB2, "B Ministry", "b2"}, {idHub, "Regional Hub", ""}},
			map[string]string{"peer-hub": idHub},
			map[string][]string{"group1": {idB1, idHub}, "group2": {idB2, idHub}}, nil)
		H.setup(t, []e2eOrg{{idH1, "Hub Member One", "h1"}, {idH2, "Hub Member Two", "h2"}, {idCA, "CERT A", ""}, {idCB, "CERT B", ""}},
			map[string]string{"peer-cert-a": idCA, "peer-cert-b": idCB},
			map[string][]string{"group1": {idH1, idCA, idCB}, "group2": {idH2, idCA, idCB}},
			[]e2ePeer{{name: "cert-a", remote: A, org: idCA, cert: hubOnA, key: hubOnAKey}, {name: "cert-b", remote: B, org: idCB, cert: hubOnA, key: hubOnAKey}})
	}()
	// The CERTs' peers (the hub) now that the hub's collections exist.
	for _, x := range []struct {
		s         *e2eServer
		cert, key string
	}{{A, aOnHub, aOnHubKey}, {B, bOnHub, bOnHubKey}} {
		addHubPeer(t, x.s, H, x.cert, x.key)
	}
	for _, s := range []*e2eServer{A, B, H} {
		s.start(t, bin, certFile, keyFile, caFile)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c := &e2eHTTP{t: t, hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}

	converge := func(what string, ok func() []string) {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			diffs := ok()
			if len(diffs) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not converge:\n%s\nlogs A:\n%s\nlogs H:\n%s\nlogs B:\n%s", what, strings.Join(diffs, "\n"), A.logs, H.logs, B.logs)
			}
			time.Sleep(300 * time.Millisecond) // polling the servers, not a clock
		}
	}
	// Phase 1: objects at every TLP level, with recipients, in the shared
	// collection and in the two sharing groups, on each side.
	ind := func(n int) string { return fmt.Sprintf("indicator--e2e00000-0000-4000-9000-%012d", n) }
	c.post(A, "shared", "a1",
		e2eIndicator(1, idA1, "clear", e2eV1, nil),
		e2eIndicator(2, idA1, "green", e2eV1, nil),
		e2eIndicator(3, idA1, "amber", e2eV1, nil),
		e2eIndicator(4, idA1, "amber+strict", e2eV1, nil, idHub, idCB, idB1),
		e2eIndicator(5, idA1, "red", e2eV1, nil, idA2),
		e2eIndicator(6, idA1, "red", e2eV1, nil, idHub, idCB, idB2),
		e2eIndicator(7, idA1, "green", e2eV1, nil))
	c.post(A, "group1", "a1", e2eIndicator(8, idA1, "green", e2eV1, nil))
	c.post(A, "group2", "a2", e2eIndicator(9, idA2, "amber", e2eV1, nil))
	c.post(B, "shared", "b1",
		e2eIndicator(21, idB1, "green", e2eV1, nil),
		e2eIndicator(22, idB1, "amber+strict", e2eV1, nil, idHub, idCA, idA2))
	c.post(B, "group2", "b2", e2eIndicator(23, idB2, "clear", e2eV1, nil))
	c.post(H, "shared", "h1",
		e2eIndicator(31, idH1, "clear", e2eV1, nil),
		e2eIndicator(32, idH1, "red", e2eV1, nil, idH2))
	// A content hash, AMBER+STRICT, released to the hub, CERT B and B1.
	content := filepath.Join(dir, "propaganda.bin")
	os.WriteFile(content, bytes.Repeat([]byte("e2e federated hash content "), 200), 0o600)
	runCLI(t, bin, []string{"SSL_CERT_FILE=" + caFile}, "hash", "share", content, "--url", "https://"+A.addr, "--user", "a1", "--password", e2ePassword,
		"--collection", "shared", "--label", "propaganda", "--tlp", "amber+strict", "--recipients", strings.Join([]string{idHub, idCB, idB1}, ","))
	hcA := hashClient(t, A, pool)
	var hashInd string
	converge("the shared hash at A", func() []string {
		res, err := hcA.Match(t.Context(), hashmatch.MatchRequest{Hashes: hashmatch.Hashes{SHA256: sha256File(t, content)}})
		if err != nil || len(res.Matches) != 1 {
			return []string{fmt.Sprintf("match: %+v %v", res, err)}
		}
		hashInd = res.Matches[0].Indicator
		return nil
	})

	// Who reads which indicator, per server, user and collection.
	type want map[string]map[string][]int // user -> collection -> indicators
	phase1 := map[*e2eServer]want{
		A: {"a1": {"shared": {1, 2, 3, 4, 5, 6, 7, 21, 31}, "group1": {8}},
			"a2": {"shared": {1, 2, 3, 5, 7, 21, 22, 31}, "group2": {9, 23}}},
		H: {"h1": {"shared": {1, 2, 3, 7, 21, 31, 32}, "group1": {8}},
			"h2": {"shared": {1, 2, 3, 7, 21, 31, 32}, "group2": {9, 23}}},
		B: {"b1": {"shared": {1, 2, 3, 4, 7, 21, 22, 31}, "group1": {8}},
			"b2": {"shared": {1, 2, 3, 6, 7, 21, 31}, "group2": {9, 23}}},
	}
	// The hash indicator: a1 at A (its author), b1 at B (a recipient).
	hashReaders := map[*e2eServer][]string{A: {"a1"}, B: {"b1"}}
	check := func(w map[*e2eServer]want, versions map[int]string, revoked map[int]bool) []string {
		var diffs []string
		for _, s := range []*e2eServer{A, H, B} {
			for user, cols := range w[s] {
				for _, col := range e2eCollections {
					got := c.read(s, col, user)
					var have []int
					for id, o := range got {
						if o["type"] != "indicator" || id == hashInd {
							continue
						}
						var n int
						fmt.Sscanf(id, "indicator--e2e00000-0000-4000-9000-%d", &n)
						have = append(have, n)
						if v := versions[n]; v != "" && o["modified"] != v {
							diffs = append(diffs, fmt.Sprintf("%s: %s reads %d in %s at version %v, want %s", s.name, user, n, col, o["modified"], v))
						}
						if r, _ := o["revoked"].(bool); r != revoked[n] {
							diffs = append(diffs, fmt.Sprintf("%s: %s reads %d in %s revoked=%v", s.name, user, n, col, r))
						}
					}
					sort.Ints(have)
					if wantIDs := cols[col]; !slices.Equal(have, wantIDs) {
						diffs = append(diffs, fmt.Sprintf("%s: %s reads %v in %s, want %v", s.name, user, have, col, wantIDs))
					}
					_, hasHash := got[hashInd]
					if col == "shared" && hasHash != slices.Contains(hashReaders[s], user) {
						diffs = append(diffs, fmt.Sprintf("%s: %s reads the hash indicator: %v", s.name, user, hasHash))
					}
				}
			}
		}
		return diffs
	}
	converge("phase 1", func() []string { return check(phase1, nil, nil) })

	// The hash is matchable in country B only by the organisation it was
	// released to; the hub's members cannot match it either.
	sum := sha256File(t, content)
	for _, x := range []struct {
		s     *e2eServer
		user  string
		match bool
	}{{B, "b1", true}, {B, "b2", false}, {H, "h1", false}, {H, "h2", false}, {A, "a2", false}} {
		hc := hashClient(t, x.s, pool)
		hc.User = x.user
		converge("hash match by "+x.user, func() []string {
			r, err := hc.Match(t.Context(), hashmatch.MatchRequest{Hashes: hashmatch.Hashes{SHA256: sum}})
			if err != nil {
				return []string{err.Error()}
			}
			if got := len(r.Matches) == 1 && r.Matches[0].Indicator == hashInd; got != x.match || !x.match && len(r.Matches) != 0 {
				return []string{fmt.Sprintf("%s at %s matches %+v, want a match: %v", x.user, x.s.name, r.Matches, x.match)}
			}
			return nil
		})
	}

	// Phase 2: a new version, a revocation and a delete at A; a sighting of
	// A's RED indicator by B2 (AMBER), a RED sighting by B1 that may not
	// leave B, and B1's verdict on the shared hash.
	c.post(A, "shared", "a1",
		e2eIndicator(2, idA1, "green", e2eV2, map[string]any{"name": "new version"}),
		e2eIndicator(3, idA1, "amber", e2eV2, map[string]any{"revoked": true}))
	if code, b := c.do("DELETE", A.api()+"collections/"+A.cols["shared"]+"/objects/"+ind(7)+"/", "a1", nil); code != http.StatusOK {
		t.Fatalf("delete at A: %d %s", code, b)
	}
	sighting := map[string]any{"type": "sighting", "spec_version": "2.1", "id": "sighting--e2e00000-0000-4000-a000-000000000001",
		"created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z", "created_by_ref": idB2, "sighting_of_ref": ind(6),
		"where_sighted_refs": []string{idB2}, "count": 3, "object_marking_refs": []string{e2eTLP["amber"]}}
	redSighting := map[string]any{"type": "sighting", "spec_version": "2.1", "id": "sighting--e2e00000-0000-4000-a000-000000000002",
		"created": "2026-03-01T00:00:00.000Z", "modified": "2026-03-01T00:00:00.000Z", "created_by_ref": idB1, "sighting_of_ref": ind(2),
		"where_sighted_refs": []string{idB1}, "count": 1, "object_marking_refs": []string{e2eTLP["red"]}}
	c.post(B, "shared", "b2", sighting)
	c.post(B, "shared", "b1", redSighting)
	hcB := hashClient(t, B, pool)
	hcB.User = "b1"
	if _, err := hcB.Verdict(t.Context(), hashmatch.VerdictRequest{Collection: "shared", Indicator: hashInd, Verdict: "true-positive", TLP: "green"}); err != nil {
		t.Fatalf("verdict at B: %v", err)
	}

	phase2 := map[*e2eServer]want{}
	for s, w := range phase1 {
		phase2[s] = want{}
		for user, cols := range w {
			phase2[s][user] = map[string][]int{}
			for col, ids := range cols {
				phase2[s][user][col] = slices.DeleteFunc(slices.Clone(ids), func(n int) bool { return n == 7 })
			}
		}
	}
	versions := map[int]string{2: e2eV2, 3: e2eV2}
	converge("phase 2", func() []string { return check(phase2, versions, map[int]bool{3: true}) })

	// Feedback at A: the sighting and the verdict arrived, as the anonymous
	// identity, under ids that are not B's; nothing names an organisation of
	// country B; the RED sighting never left B. All of A's organisations
	// read them (AMBER and GREEN in the shared collection).
	secrets := []string{idB1, idB2, "B Telecom", "B Ministry", "sighting--e2e00000-0000-4000-a000"}
	feedbackAt := func(s *e2eServer, user string) (sightings, opinions []map[string]any, diffs []string) {
		for id, o := range c.read(s, "shared", user) {
			switch o["type"] {
			case "sighting":
				sightings = append(sightings, o)
			case "opinion":
				opinions = append(opinions, o)
			default:
				continue
			}
			b, _ := json.Marshal(o)
			for _, x := range secrets {
				if strings.Contains(id, x) || bytes.Contains(b, []byte(x)) {
					diffs = append(diffs, fmt.Sprintf("%s: %s reads %s naming %q: %s", s.name, user, id, x, b))
				}
			}
			if o["created_by_ref"] != access.AnonymousIdentity {
				diffs = append(diffs, fmt.Sprintf("%s: %s reads %s not anonymous: %s", s.name, user, id, b))
			}
		}
		return sightings, opinions, diffs
	}
	for _, x := range []struct {
		s    *e2eServer
		user string
	}{{A, "a1"}, {A, "a2"}, {H, "h1"}, {H, "h2"}} {
		converge("feedback at "+x.s.name+" for "+x.user, func() []string {
			sightings, opinions, diffs := feedbackAt(x.s, x.user)
			if len(sightings) != 1 || sightings[0]["sighting_of_ref"] != ind(6) {
				diffs = append(diffs, fmt.Sprintf("%s: %s reads sightings %v, want the one of indicator 6", x.s.name, x.user, sightings))
			} else if w, _ := sightings[0]["where_sighted_refs"].([]any); len(w) != 1 || w[0] != access.AnonymousIdentity {
				diffs = append(diffs, fmt.Sprintf("%s: the sighting names %v", x.s.name, w))
			}
			if len(opinions) != 1 || fmt.Sprint(opinions[0]["object_refs"]) != fmt.Sprint([]any{hashInd}) {
				diffs = append(diffs, fmt.Sprintf("%s: %s reads opinions %v, want the verdict on the hash", x.s.name, x.user, opinions))
			}
			return diffs
		})
	}
	// The RED sighting stays with B1: B2 does not read it, and no one
	// elsewhere does (checked above: one sighting only at A and H).
	if _, ok := c.read(B, "shared", "b2")[redSighting["id"].(string)]; ok {
		t.Error("b2 reads b1's RED sighting")
	}
	if _, ok := c.read(B, "shared", "b1")[redSighting["id"].(string)]; !ok {
		t.Error("b1 does not read its own RED sighting")
	}
	// The verdict counts at A for the hash's author.
	converge("the verdict in A's match", func() []string {
		r, err := hcA.Match(t.Context(), hashmatch.MatchRequest{Hashes: hashmatch.Hashes{SHA256: sum}})
		if err != nil || len(r.Matches) != 1 || r.Matches[0].Verdicts.TruePositive != 1 {
			return []string{fmt.Sprintf("match at A: %+v %v", r, err)}
		}
		return nil
	})
}

// addHubPeer writes the hub as a peer of a CERT, with its three links.
func addHubPeer(t *testing.T, s, hub *e2eServer, cert, key string) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, s.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, err := federation.NewSealer(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := sealer.Seal("hub", federation.Credentials{ClientKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePeer(ctx, &store.Peer{Name: "hub", URL: hub.api(), Organisation: idHub, Secret: secret, CA: e2eCAPEM, Cert: cert}); err != nil {
		t.Fatal(err)
	}
	for _, alias := range e2eCollections {
		if err := st.AddLink(ctx, &store.Link{ID: "hub-" + alias, Peer: "hub", Direction: store.LinkPull, Local: s.cols[alias], Remote: hub.cols[alias]}); err != nil {
			t.Fatal(err)
		}
	}
}

func hashClient(t *testing.T, s *e2eServer, pool *x509.CertPool) *hashmatch.Client {
	hc, err := hashmatch.NewClient("https://" + s.addr)
	if err != nil {
		t.Fatal(err)
	}
	hc.User, hc.Password = "a1", e2ePassword
	hc.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return hc
}

func sha256File(t *testing.T, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
