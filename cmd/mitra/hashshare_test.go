package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/hashmatch"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/store/sqlite"
	"github.com/mitra-cert/mitra/internal/taxii"
	"golang.org/x/image/draw"
)

// TestHashShareMatchVerdictCommands runs share, match and verdict against
// a server with the hash API mounted as serve mounts it.
func TestHashShareMatchVerdictCommands(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	org := &store.Organisation{Name: "National CERT"}
	if err := st.CreateOrganisation(ctx, org); err != nil {
		t.Fatal(err)
	}
	if _, err := access.CreateUser(ctx, st, "anna", "correct horse battery", access.RoleAnalyst, org.ID); err != nil {
		t.Fatal(err)
	}
	coll := &store.Collection{Title: "hashes", Alias: "hashes", Grants: []store.Grant{{Kind: store.GrantOrg, Subject: org.ID, Read: true, Write: true}}}
	if err := st.CreateCollection(ctx, coll); err != nil {
		t.Fatal(err)
	}
	srv := taxii.NewServer(taxii.Config{Store: st, Auth: access.NewAuthenticator(st, nil), Validator: newValidator()})
	svc := hashmatch.New(hashmatch.Config{Store: st})
	srv.Mount(hashmatch.Prefix, hashmatch.NewHandler(svc, hashmatch.HandlerOptions{Authenticate: srv.Authenticate, TAXII: srv}))
	ts := httptest.NewServer(srv)
	defer ts.Close()
	envs := map[string]string{"MITRA_URL": ts.URL, "MITRA_USER": "anna", "MITRA_PASSWORD": "correct horse battery"}

	dir := t.TempDir()
	img := testPicture()
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatal(err)
	}
	small := image.NewRGBA(image.Rect(0, 0, 300, 225))
	draw.CatmullRom.Scale(small, small.Bounds(), img, img.Bounds(), draw.Src, nil)
	if err := jpeg.Encode(&jpgBuf, small, &jpeg.Options{Quality: 75}); err != nil {
		t.Fatal(err)
	}
	orig, copyPath := filepath.Join(dir, "orig.png"), filepath.Join(dir, "copy.jpg")
	for p, b := range map[string][]byte{orig: pngBuf.Bytes(), copyPath: jpgBuf.Bytes()} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	out, stderr, err := mitra(t, envs, "", "hash", "share", orig, "--collection", "hashes", "--label", "propaganda,recruitment", "--tlp", "amber")
	if err != nil {
		t.Fatalf("share: %v %s", err, stderr)
	}
	_, id, _ := strings.Cut(strings.TrimSpace(out), "\t")
	if !strings.HasPrefix(id, "indicator--") {
		t.Fatalf("share printed %q", out)
	}
	if _, stderr, err := mitra(t, envs, "", "hash", "share", orig, "--collection", "hashes", "--label", "cats"); exitCode(err) != 1 || !strings.Contains(stderr, "vocabulary") {
		t.Errorf("unknown label: %v %s", err, stderr)
	}
	if err := svc.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	out, stderr, err = mitra(t, envs, "", "hash", "match", "--json", copyPath)
	if err != nil {
		t.Fatalf("match: %v %s", err, stderr)
	}
	var res hashmatch.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 || res.Matches[0].Indicator != id || res.Matches[0].Algorithm != "pdq" {
		t.Fatalf("match of the resized copy: %s", out)
	}
	if _, stderr, err := mitra(t, envs, "", "hash", "verdict", id, "--false-positive", "--collection", "hashes"); err != nil {
		t.Fatalf("verdict: %v %s", err, stderr)
	}
	if err := svc.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	out, _, err = mitra(t, envs, "", "hash", "match", "--sha256", res.Query.SHA256, "--pdq", res.Query.PDQ)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "verdicts +0/-1") {
		t.Errorf("match by hash after the verdict: %v %s", err, out)
	}
	// `mitra hash FILE` still prints hashes.
	if out, _, err := mitra(t, nil, "", "hash", orig); err != nil || !strings.Contains(out, "pdq") {
		t.Errorf("mitra hash FILE: %v %s", err, out)
	}
}

// testPicture is a photograph-like picture: gradients and discs that
// resizing keeps (PDQ quality well above 50).
func testPicture() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 400, 300))
	const seed = 3.0
	for y := range 300 {
		for x := range 400 {
			fx, fy := float64(x)/400, float64(y)/300
			v := 128 + 60*math.Sin(6*fx*(1+seed/3)+seed) + 50*math.Cos(5*fy*(1+seed/5)-seed)
			for k := range 3 {
				cx, cy := 0.2+0.3*float64(k)+0.05*seed, 0.3+0.2*math.Sin(seed+float64(k))
				if (fx-cx)*(fx-cx)+(fy-cy)*(fy-cy) < 0.01*float64(k+1) {
					v = 255 - v
				}
			}
			c := uint8(math.Max(0, math.Min(255, v)))
			img.SetRGBA(x, y, color.RGBA{c, uint8(int(c) * 4 % 256), 255 - c, 255})
		}
	}
	return img
}

// TestServeHashMatch runs 'mitra serve' and the hash commands against it:
// a shared hash reaches the match service while it runs, and leaves it when
// its owner revokes it.
func TestServeHashMatch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped in -short")
	}
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	data, dir := t.TempDir(), t.TempDir()
	runCLI(t, bin, []string{"MITRA_USER_PASSWORD=alice-password-1"}, "user", "create", "--data", data, "alice")
	col := strings.TrimSpace(runCLI(t, bin, nil, "collection", "create", "--data", data, "--title", "Hashes", "--readers", "alice", "--writers", "alice"))
	runCLI(t, bin, nil, "collection", "grant", "--data", data, col, "--read", "--write", "--org", "Default organisation")
	srv := launchServer(t, bin, "--data", data, "--hash-poll", "200ms")
	srv.waitListening(t)
	var buf bytes.Buffer
	if err := png.Encode(&buf, testPicture()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "leaflet.png")
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"MITRA_URL=" + srv.base, "MITRA_USER=alice", "MITRA_PASSWORD=alice-password-1"}
	out := runCLI(t, bin, env, "hash", "share", file, "--collection", col, "--label", "propaganda", "--tlp", "amber")
	_, id, _ := strings.Cut(strings.TrimSpace(out), "\t")
	waitFor := func(what string, cond func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out := runCLI(t, bin, env, "hash", "match", file)
			if cond(out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("never: %s; last answer %s", what, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the shared hash matches", func(out string) bool { return strings.Contains(out, id) })
	alice := &client{t: t, base: srv.base, user: "alice", pass: "alice-password-1"}
	code, _, body := alice.do("GET", "/api/collections/"+col+"/objects/"+id+"/", nil)
	if code != http.StatusOK {
		t.Fatalf("GET indicator: %d %s", code, body)
	}
	var env2 struct {
		Objects []map[string]any `json:"objects"`
	}
	if err := json.Unmarshal(body, &env2); err != nil || len(env2.Objects) != 1 {
		t.Fatalf("indicator: %v %s", err, body)
	}
	ind := env2.Objects[0]
	ind["revoked"], ind["modified"] = true, time.Now().UTC().Add(time.Second).Format("2006-01-02T15:04:05.000Z")
	raw, _ := json.Marshal(map[string]any{"objects": []any{ind}})
	if code, _, body := alice.do("POST", "/api/collections/"+col+"/objects/", raw); code != http.StatusAccepted {
		t.Fatalf("revoke: %d %s", code, body)
	}
	waitFor("the revoked hash stops matching", func(out string) bool { return strings.Contains(out, "0 match(es)") })
}
