package taxii_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/bench"
	"github.com/mitra-cert/mitra/internal/pattern"
	"github.com/mitra-cert/mitra/internal/stix"
	"github.com/mitra-cert/mitra/internal/store"
	"github.com/mitra-cert/mitra/internal/taxii"
)

// benchEnv is a server on a real store of the current backend (see
// TestMain), with one user allowed to read and write one collection.
type benchEnv struct {
	srv   *httptest.Server
	store store.Store
	col   string
	token string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx := context.Background()
	st, err := current.Open(ctx, current.Location(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if _, err := access.CreateUser(ctx, st, "bench", "bench-password", access.RoleAnalyst, ""); err != nil {
		b.Fatal(err)
	}
	c := &store.Collection{Title: "bench", Readers: []string{"bench"}, Writers: []string{"bench"}}
	if err := st.CreateCollection(ctx, c); err != nil {
		b.Fatal(err)
	}
	tok, _, err := access.CreateToken(ctx, st, "bench", "", 0, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	srv := taxii.NewServer(taxii.Config{
		Store: st,
		Auth:  access.NewAuthenticator(st, nil),
		// The server's validator: patterns are parsed too.
		Validator: &stix.Validator{CheckPattern: pattern.Check},
		PageSize:  1000,
	})
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	return &benchEnv{srv: hs, store: st, col: c.ID, token: tok}
}

func (e *benchEnv) request(b *testing.B, method, path string, body []byte) []byte {
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Accept", taxii.MediaType)
	if body != nil {
		req.Header.Set("Content-Type", taxii.MediaType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return out
}

// benchEnvelope returns an envelope of n realistic, distinct indicators
// (random ids, creation times out of order, the pattern mix of feeds).
func benchEnvelope(g *bench.Generator, n int) []byte { return g.Envelope(n) }

// BenchmarkIngest POSTs envelopes of 500 indicators through the HTTP API
// (validation, storage, durable commit) and reports objects per second.
func BenchmarkIngest(b *testing.B) {
	e := newBenchEnv(b)
	const per = 500
	path := "/api/collections/" + e.col + "/objects/"
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("envelope=500,clients=%d", clients), func(b *testing.B) {
			g := bench.NewGenerator(uint64(clients))
			bodies := make([][]byte, b.N*clients)
			for i := range bodies {
				bodies[i] = benchEnvelope(g, per)
			}
			var next atomic.Int64
			c0 := bench.CPUTime()
			b.ResetTimer()
			done := make(chan struct{})
			for c := 0; c < clients; c++ {
				go func() {
					defer func() { done <- struct{}{} }()
					for {
						i := next.Add(1) - 1
						if i >= int64(len(bodies)) {
							return
						}
						out := e.request(b, "POST", path, bodies[i])
						var st struct {
							SuccessCount int `json:"success_count"`
						}
						if json.Unmarshal(out, &st); st.SuccessCount != per {
							b.Errorf("status: %s", out[:min(len(out), 500)])
							return
						}
					}
				}()
			}
			for c := 0; c < clients; c++ {
				<-done
			}
			b.StopTimer()
			b.ReportMetric(float64(len(bodies)*per)/b.Elapsed().Seconds(), "objects/s")
			// CPU time of the process (server and clients) per object:
			// less disturbed than the rate by neighbours on a shared host.
			b.ReportMetric(float64((bench.CPUTime()-c0).Microseconds())/float64(len(bodies)*per), "cpu-µs/object")
		})
	}
}

// BenchmarkPaginatedRead reads a collection of 100,000 objects page by page
// (1,000 per page, by next) through the HTTP API.
func BenchmarkPaginatedRead(b *testing.B) { benchmarkPaginatedRead(b, "") }

// BenchmarkPaginatedReadAllVersions is BenchmarkPaginatedRead with
// match[version]=all, where the server also checks that the latest version
// of every listed object is visible to the reader.
func BenchmarkPaginatedReadAllVersions(b *testing.B) {
	benchmarkPaginatedRead(b, "&match[version]=all")
}

func benchmarkPaginatedRead(b *testing.B, filter string) {
	e := newBenchEnv(b)
	const total = 100_000
	path := "/api/collections/" + e.col + "/objects/"
	g := bench.NewGenerator(1)
	for i := 0; i < total/1000; i++ {
		e.request(b, "POST", path, benchEnvelope(g, 1000))
	}
	b.ResetTimer()
	var read int
	for i := 0; i < b.N; i++ {
		next := ""
		n := 0
		for {
			q := "?limit=1000" + filter
			if next != "" {
				q += "&next=" + next
			}
			out := e.request(b, "GET", path+q, nil)
			more, nxt, count, err := bench.ScanEnvelope(out)
			if err != nil {
				b.Fatal(err)
			}
			n += count
			if !more {
				break
			}
			next = nxt
		}
		if n != total {
			b.Fatalf("read %d objects, want %d", n, total)
		}
		read += n
	}
	b.StopTimer()
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "objects/s")
}
