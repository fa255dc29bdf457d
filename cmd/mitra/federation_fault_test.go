package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/federation"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/postgres/pgtest"
	"github.com/mitra-cert/mitra/internal/taxii"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// The federation fault tests: a `mitra serve` killed with SIGKILL in the
// middle of a large sync (issue 14, "Proof") is restarted, or replaced by
// another process on the same PostgreSQL, and the mirror converges with
// every object exactly once.

const (
	// fedObjects indicators are in the source collection, the first
	// fedVersions of them with a second version (every sixth of those a
	// revocation).
	fedObjects  = 16000
	fedVersions = 4000
	// fedKillAt is how many changes the receiving side has logged when
	// the process running the link is killed: well inside the sync.
	fedKillAt = 4000
	// fedFeedPage is the pull links' page: small, so that the kill comes
	// between pages as well as inside one.
	fedFeedPage = "500"
	// fedPassword is the source's "peer" user, which the links use.
	fedPassword = "peer-password-9"
	fedV1       = "2025-01-01T00:00:00.000Z"
	fedV2       = "2025-02-01T00:00:00.000Z"
)

func fedID(i int) string { return fmt.Sprintf("indicator--00000000-0000-4000-8000-%012d", i) }

func fedObject(i int, version string) json.RawMessage {
	revoked := ""
	if version == fedV2 && i%6 == 0 {
		revoked = `,"revoked":true`
	}
	return json.RawMessage(fmt.Sprintf(`{"type":"indicator","spec_version":"2.1","id":%q,"created":%q,"modified":%q,"name":"fault %d","pattern":"[ipv4-addr:value = '198.51.%d.%d']","pattern_type":"stix","valid_from":"2025-01-01T00:00:00Z"%s}`,
		fedID(i), fedV1, version, i, i/250%250, i%250, revoked))
}

// fedSourceData is a SQLite data directory holding the source collection
// (alias "source", readable and writable by user "peer"), built once per
// test run and copied by each test.
type fedSourceData struct {
	dir, col string
	// token is a bearer token of user "peer" (cheaper per request than
	// a password, which is hashed on every one).
	token string
}

var (
	fedSourceMu   sync.Mutex
	fedSourceDone *fedSourceData
)

// buildFedSource builds the source data directory once per test run,
// through the mitra binary (the objects are POSTed to a `mitra serve`
// on it, so that building it under -race takes seconds).
func buildFedSource(t *testing.T, bin string) *fedSourceData {
	t.Helper()
	fedSourceMu.Lock()
	defer fedSourceMu.Unlock()
	if fedSourceDone != nil {
		return fedSourceDone
	}
	dir, err := os.MkdirTemp("", "mitra-fedsource-")
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]string{"MITRA_USER_PASSWORD": fedPassword}
	for _, args := range [][]string{
		{"user", "create", "--data", dir, "peer"},
		{"collection", "create", "--data", dir, "--title", "Source", "--alias", "source", "--readers", "peer", "--writers", "peer"},
	} {
		if out, errOut, err := mitra(t, envs, "", args...); err != nil {
			t.Fatalf("mitra %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	srv := fedServe(t, bin, "--data", dir, "--no-peers")
	push := func(from, to int, version string) {
		for lo := from; lo < to; lo += 2000 {
			var objs []string
			for i := lo; i < min(lo+2000, to); i++ {
				objs = append(objs, string(fedObject(i, version)))
			}
			req, _ := http.NewRequest(http.MethodPost, srv.base+"/api/collections/source/objects/", strings.NewReader(`{"objects":[`+strings.Join(objs, ",")+`]}`))
			req.SetBasicAuth("peer", fedPassword)
			req.Header.Set("Accept", taxii.MediaType)
			req.Header.Set("Content-Type", taxii.MediaType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var st struct {
				Status       string `json:"status"`
				SuccessCount int    `json:"success_count"`
			}
			if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &st) != nil || st.Status != "complete" || st.SuccessCount != len(objs) {
				t.Fatalf("source: POST: %d %s", resp.StatusCode, body)
			}
		}
	}
	// The new versions come after all the first ones, so that a mirror
	// stopped half-way holds first versions whose second one is to come.
	push(0, fedObjects, fedV1)
	push(0, fedVersions, fedV2)
	stop(t, srv)
	st, err := openStore(t.Context(), "sqlite:", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	col, err := st.GetCollection(t.Context(), "source")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := access.CreateToken(t.Context(), st, "peer", "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fedSourceDone = &fedSourceData{dir: dir, col: col.ID, token: token}
	return fedSourceDone
}

// fedSource copies the source data directory for one test.
func fedSource(t *testing.T, bin string) (dir, col string) {
	t.Helper()
	src := buildFedSource(t, bin)
	dir = t.TempDir()
	ents, err := os.ReadDir(src.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, src.col
}

// fedExpected is the source's content after fedDeletes: "id|version".
func fedExpected(deleted bool) map[string]bool {
	want := map[string]bool{}
	for i := range fedObjects {
		want[fedID(i)+"|"+fedV1] = true
		if i < fedVersions {
			want[fedID(i)+"|"+fedV2] = true
		}
	}
	if deleted {
		for _, d := range fedDeletes() {
			for _, v := range []string{fedV1, fedV2} {
				if d.version == "" || d.version == v {
					delete(want, d.id+"|"+v)
				}
			}
		}
	}
	return want
}

type fedDelete struct{ id, version string }

// fedDeletes are made on the source while the mirror's server is dead:
// whole objects and first versions the mirror already holds (it applied
// fedKillAt changes in id order), and whole objects it has not seen yet.
func fedDeletes() []fedDelete {
	var ds []fedDelete
	for i := 0; i < 100; i++ {
		ds = append(ds, fedDelete{id: fedID(i)})
	}
	for i := 1000; i < 1100; i++ {
		ds = append(ds, fedDelete{id: fedID(i), version: fedV1})
	}
	for i := fedObjects - 100; i < fedObjects; i++ {
		ds = append(ds, fedDelete{id: fedID(i)})
	}
	return ds
}

// deleteOnSource deletes ds over TAXII as the source's peer user.
func deleteOnSource(t *testing.T, base, col string, ds []fedDelete) {
	t.Helper()
	hc := &http.Client{}
	for _, d := range ds {
		u := base + "/api/collections/" + col + "/objects/" + d.id + "/"
		if d.version != "" {
			u += "?" + url.Values{"match[version]": {d.version}}.Encode()
		}
		req, _ := http.NewRequest(http.MethodDelete, u, nil)
		req.Header.Set("Authorization", "Bearer "+buildFedSource(t, "").token)
		req.Header.Set("Accept", taxii.MediaType)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE %s: %d %s", u, resp.StatusCode, body)
		}
	}
}

// changesLogged is how many changes a collection's log holds (its
// sequence numbers are 1, 2, ...): one cheap query.
func changesLogged(t *testing.T, st store.Store, col string) int {
	t.Helper()
	var lo, hi int64 = 0, 1
	has := func(n int64) bool {
		chs, err := st.Changes(t.Context(), col, n-1, 1)
		if err != nil {
			t.Fatal(err)
		}
		return len(chs) > 0
	}
	for has(hi) {
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 { // has(lo), !has(hi)
		if mid := (lo + hi) / 2; has(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return int(lo)
}

// reached reports whether the collection's change log holds n changes.
func reached(t *testing.T, st store.Store, col string, n int) bool {
	t.Helper()
	chs, err := st.Changes(t.Context(), col, int64(n-1), 1)
	if err != nil {
		t.Fatal(err)
	}
	return len(chs) > 0
}

// getJSON GETs path on a running server as user (password fedPassword)
// into v.
func getJSON(t *testing.T, base, user, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.SetBasicAuth(user, fedPassword)
	req.Header.Set("Accept", taxii.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// checkMirror asserts, through the running server at base (over HTTP:
// the race detector makes SQLite in the test process slow), that
// collection col holds exactly want, each version once, and that its
// change log added each version once and deleted each at most once. user
// reads col.
func checkMirror(t *testing.T, base, user, col string, want map[string]bool) (deletes int) {
	t.Helper()
	got := map[string]int{}
	q := url.Values{"match[version]": {"all"}, "limit": {"10000"}}
	for {
		var m struct {
			More    bool   `json:"more"`
			Next    string `json:"next"`
			Objects []struct {
				ID      string `json:"id"`
				Version string `json:"version"`
			} `json:"objects"`
		}
		getJSON(t, base, user, "/api/collections/"+col+"/manifest/?"+q.Encode(), &m)
		for _, o := range m.Objects {
			got[o.ID+"|"+o.Version]++
		}
		if !m.More {
			break
		}
		q.Set("next", m.Next)
	}
	missing, extra, twice := 0, 0, 0
	for k := range want {
		if got[k] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("mirror lacks %s", k)
			}
		}
	}
	for k, n := range got {
		if !want[k] {
			extra++
			if extra <= 5 {
				t.Errorf("mirror holds %s, which the source does not", k)
			}
		}
		if n > 1 {
			twice++
		}
	}
	if missing+extra+twice > 0 || len(got) != len(want) {
		t.Errorf("mirror: %d versions, want %d: %d missing, %d extra, %d stored twice", len(got), len(want), missing, extra, twice)
	}
	adds, dels := map[string]int{}, map[string]int{}
	var after int64
	for {
		var page struct {
			Changes []struct {
				Seq     int64  `json:"seq"`
				Op      string `json:"op"`
				ID      string `json:"id"`
				Version string `json:"version"`
			} `json:"changes"`
		}
		getJSON(t, base, user, fmt.Sprintf("/api/collections/%s/x-mitra-changes/?after=%d&limit=10000", col, after), &page)
		if len(page.Changes) == 0 {
			break
		}
		for _, c := range page.Changes {
			if c.Op == "add" {
				adds[c.ID+"|"+c.Version]++
			} else {
				dels[c.ID+"|"+c.Version]++
			}
		}
		after = page.Changes[len(page.Changes)-1].Seq
	}
	for k, n := range adds {
		if n != 1 {
			t.Errorf("change log of the mirror: %s added %d times", k, n)
		}
	}
	for k, n := range dels {
		if n != 1 || want[k] {
			t.Errorf("change log of the mirror: %s deleted %d times (held: %v)", k, n, want[k])
		}
	}
	for k := range want {
		if adds[k] != 1 {
			t.Errorf("change log of the mirror: %s held but added %d times", k, adds[k])
		}
	}
	return len(dels)
}

// fedProc starts `mitra serve` with args and the peer key file (no admin
// password needed: launchServer sets it).
func fedServe(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := launchServer(t, bin, args...)
	p.waitListening(t)
	return p
}

// kill9 kills p with SIGKILL and waits for it.
func kill9(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// stop ends p with SIGTERM and waits for it.
func stop(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop on SIGTERM\n%s", p.logs)
	}
}

// waitFor polls cond every 20 ms until it holds or the time runs out.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool, logs ...*proc) {
	t.Helper()
	waitEvery(t, what, limit, 20*time.Millisecond, cond, logs...)
}

// waitEvery polls cond every period until it holds or the time runs out.
func waitEvery(t *testing.T, what string, limit, period time.Duration, cond func() bool, logs ...*proc) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var all strings.Builder
			for _, p := range logs {
				all.WriteString(p.logs.String())
			}
			t.Fatalf("%s: not within %s\n%s", what, limit, all.String())
		}
		time.Sleep(period)
	}
}

// fedKey writes a peer secrets key to a file.
func fedKey(t *testing.T) (key, file string) {
	t.Helper()
	key = base64.StdEncoding.EncodeToString([]byte("fault-test-key-0123456789abcdef!"))
	file = filepath.Join(t.TempDir(), "peer.key")
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, file
}

// setupMirror prepares, in the store storeArgs name, a collection "mirror"
// writable by organisation "Source CERT" and a peer "src" of that
// organisation that pulls the source collection into it continuously;
// user "checker" reads the mirror.
func setupMirror(t *testing.T, storeArgs []string, key, srcBase, srcCol string) {
	t.Helper()
	envs := map[string]string{"MITRA_PEER_KEY": key, "MITRA_PEER_PASSWORD": fedPassword, "MITRA_USER_PASSWORD": fedPassword}
	must := func(args ...string) {
		t.Helper()
		if out, errOut, err := mitra(t, envs, "", append(args, storeArgs...)...); err != nil {
			t.Fatalf("mitra %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
	must("org", "create", "Source CERT")
	must("user", "create", "checker")
	must("collection", "create", "--title", "Mirror", "--alias", "mirror", "--readers", "checker")
	must("collection", "grant", "mirror", "--read", "--write", "--org", "Source CERT")
	must("peer", "add", "src", "--url", srcBase+"/api/", "--org", "Source CERT", "--user", "peer", "--pull", srcCol+"=mirror", "--interval", "0s")
}

// TestFederationPullKill9SQLite: the server running a pull link is killed
// with SIGKILL half-way through a sync of 20,000 changes; while it is down
// the source deletes objects and versions (some the mirror holds, some it
// has not seen yet); restarted, it resumes from its stored position and
// the mirror converges: every version of the source exactly once, deletes
// applied, nothing added or deleted twice in its change log, and the
// position at the end of the source's feed.
func TestFederationPullKill9SQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}

	srcDir, srcCol := fedSource(t, bin)
	src := fedServe(t, bin, "--store", "sqlite:"+srcDir+"?sync=normal", "--no-peers")
	defer stop(t, src)
	key, keyFile := fedKey(t)
	data := t.TempDir()
	setupMirror(t, []string{"--data", data}, key, src.base, srcCol)
	args := []string{"--data", data, "--peer-key-file", keyFile, "--peer-lease-ttl", "2s", "--peer-feed-page", fedFeedPage}
	mir := fedServe(t, bin, args...)

	st, err := openStore(t.Context(), "sqlite:", data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	col, err := st.GetCollection(t.Context(), "mirror")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the mirror logs its first changes", 60*time.Second, func() bool { return reached(t, st, col.ID, fedKillAt) }, mir)
	kill9(t, mir)
	n := changesLogged(t, st, col.ID)
	if n >= fedObjects+fedVersions {
		t.Fatalf("the kill came after the sync ended (%d changes): make the source larger", n)
	}
	t.Logf("killed with %d changes applied", n)

	deleteOnSource(t, src.base, srcCol, fedDeletes())
	latest := sourceLatest(t, src.base, srcCol)
	mir = fedServe(t, bin, args...)
	// LinkMode reads in a write transaction: polled slowly, so as not to
	// slow the server down.
	waitEvery(t, "the mirror reaches the end of the source's feed", 60*time.Second, 300*time.Millisecond, func() bool {
		pos, err := federation.LinkMode(t.Context(), st, col.ID, "src-pull-1")
		return err == nil && pos.Seq == latest
	}, mir)
	if checkMirror(t, mir.base, "checker", col.ID, fedExpected(true)) == 0 {
		t.Error("no delete reached the mirror")
	}
	stop(t, mir)
}

// sourceLatest is the last position of the source's change feed.
func sourceLatest(t *testing.T, base, col string) int64 {
	t.Helper()
	cl, err := taxiiclient.NewClient(base+"/api/", col)
	if err != nil {
		t.Fatal(err)
	}
	cl.User, cl.Password = "peer", fedPassword
	var after int64
	for {
		page, err := cl.Changes(t.Context(), "", after, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) == 0 {
			return after
		}
		after = page.Changes[len(page.Changes)-1].Seq
	}
}

// TestFederationPushKill9SQLite: the server running a push link is killed
// with SIGKILL part-way through pushing 20,000 versions, and objects are
// deleted on it while it is dead (fedDeletes: whole objects and first
// versions it had pushed, objects it had not); restarted, it resumes from
// its stored positions, and the receiving server holds every version left
// exactly once, the deleted ones it had received deleted once (the page
// resent after the kill is taken as duplicates: nothing is logged twice).
func TestFederationPushKill9SQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	// The receiver: user "peer" may write its collection "inbox".
	recvData := t.TempDir()
	envs := map[string]string{"MITRA_USER_PASSWORD": fedPassword}
	for _, args := range [][]string{
		{"user", "create", "--data", recvData, "peer"},
		{"collection", "create", "--data", recvData, "--title", "Inbox", "--alias", "inbox", "--readers", "peer", "--writers", "peer"},
	} {
		if out, errOut, err := mitra(t, envs, "", args...); err != nil {
			t.Fatalf("mitra %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	rst, err := openStore(t.Context(), "sqlite:", recvData)
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	inbox, err := rst.GetCollection(t.Context(), "inbox")
	if err != nil {
		t.Fatal(err)
	}
	recv := fedServe(t, bin, "--data", recvData, "--no-peers")
	defer stop(t, recv)

	// The sender: the source data, with a peer "recv" whose organisation
	// may read the source collection, pushing it to the inbox.
	data, srcCol := fedSource(t, bin)
	key, keyFile := fedKey(t)
	penvs := map[string]string{"MITRA_PEER_KEY": key, "MITRA_PEER_PASSWORD": fedPassword}
	for _, args := range [][]string{
		{"org", "create", "--data", data, "Receiver CERT"},
		{"collection", "grant", "--data", data, "source", "--read", "--org", "Receiver CERT"},
		{"peer", "add", "--data", data, "recv", "--url", recv.base + "/api/", "--org", "Receiver CERT", "--user", "peer", "--push", "source=" + inbox.ID, "--interval", "0s"},
	} {
		if out, errOut, err := mitra(t, penvs, "", args...); err != nil {
			t.Fatalf("mitra %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	args := []string{"--data", data, "--peer-key-file", keyFile, "--peer-lease-ttl", "2s", "--peer-feed-page", fedFeedPage}
	snd := fedServe(t, bin, args...)
	waitFor(t, "the receiver logs its first changes", 60*time.Second, func() bool { return reached(t, rst, inbox.ID, fedKillAt) }, snd)
	kill9(t, snd)
	total := fedObjects + fedVersions
	n := changesLogged(t, rst, inbox.ID)
	if n >= total {
		t.Fatalf("the kill came after the push ended (%d changes): make the source larger", n)
	}
	if n >= fedObjects-100 {
		t.Fatalf("the kill came after the push reached the last deleted objects (%d changes): make the source larger", n)
	}
	t.Logf("killed with %d versions received", n)
	// Deleted over TAXII by a server that runs no links (a SQLite store
	// opened in the race-instrumented test process is slow).
	start := time.Now()
	del := fedServe(t, bin, "--data", data, "--no-peers")
	deleteOnSource(t, del.base, srcCol, fedDeletes())
	stop(t, del)
	t.Logf("deleted %d objects or versions in %s", len(fedDeletes()), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	snd = fedServe(t, bin, args...)
	// The receiver got, of the deleted versions, the first versions of
	// objects 0 to 99 and 1000 to 1099 (the kill came after them and before
	// any second version): 200 adds and 200 deletes, so its log ends at
	// total again, the deletions first.
	waitFor(t, "the receiver holds every version", 60*time.Second, func() bool { return reached(t, rst, inbox.ID, total) }, snd, recv)
	stop(t, snd)
	t.Logf("resumed and converged in %s", time.Since(start).Round(time.Millisecond))
	if dels := checkMirror(t, recv.base, "peer", inbox.ID, fedExpected(true)); dels != 200 {
		t.Errorf("the receiver deleted %d versions, want the 200 it had received", dels)
	}
}

// TestFederationTakeoverPostgres: two `mitra serve` processes on one
// PostgreSQL schema are both configured to run a pull link; the one that
// holds its lease is killed with SIGKILL half-way through a sync; the
// other takes the link over once the lease expires and the mirror
// converges with every version exactly once.
func TestFederationTakeoverPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	dsn := pgtest.NewSchema(t)
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	srcDir, srcCol := fedSource(t, bin)
	src := fedServe(t, bin, "--store", "sqlite:"+srcDir+"?sync=normal", "--no-peers")
	defer stop(t, src)
	key, keyFile := fedKey(t)
	// Migrate the schema before the commands use it (as serve would).
	st, err := openStore(t.Context(), dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	setupMirror(t, []string{"--store", dsn}, key, src.base, srcCol)
	col, err := st.GetCollection(t.Context(), "mirror")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	holder := func() int {
		var h string
		err := conn.QueryRow(t.Context(), `SELECT holder FROM peer_leases WHERE link = $1`, "src-pull-1").Scan(&h)
		if err == pgx.ErrNoRows {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`pid (\d+)$`).FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("lease holder %q names no pid", h)
		}
		pid, _ := strconv.Atoi(m[1])
		return pid
	}

	args := []string{"--store", dsn, "--peer-key-file", keyFile, "--peer-lease-ttl", "2s", "--peer-feed-page", fedFeedPage}
	a := launchServer(t, bin, args...)
	b := launchServer(t, bin, args...)
	a.waitListening(t)
	b.waitListening(t)
	waitFor(t, "the mirror logs its first changes", 60*time.Second, func() bool { return reached(t, st, col.ID, fedKillAt) }, a, b)
	victim, survivor := a, b
	switch holder() {
	case a.cmd.Process.Pid:
	case b.cmd.Process.Pid:
		victim, survivor = b, a
	default:
		t.Fatalf("the lease is held by neither server (%d)", holder())
	}
	kill9(t, victim)
	n := changesLogged(t, st, col.ID)
	if n >= fedObjects+fedVersions {
		t.Fatalf("the kill came after the sync ended (%d changes): make the source larger", n)
	}
	t.Logf("killed the lease holder with %d changes applied", n)
	latest := sourceLatest(t, src.base, srcCol)
	tookOver := false
	waitFor(t, "the other server completes the sync", 60*time.Second, func() bool {
		if holder() == survivor.cmd.Process.Pid {
			tookOver = true
		}
		pos, err := federation.LinkMode(t.Context(), st, col.ID, "src-pull-1")
		return err == nil && pos.Seq == latest
	}, survivor)
	if !tookOver {
		t.Error("the surviving server was never seen holding the lease")
	}
	checkMirror(t, survivor.base, "checker", col.ID, fedExpected(false))
	stop(t, survivor)
}
