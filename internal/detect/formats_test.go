package detect

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	mapping, err := LoadMapping("testdata/json/ecs-mapping.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file      string
		format    string
		want      map[string]int64
		events    int64
		malformed int64
		sightings int // distinct sighting ids
	}{
		{"testdata/zeek/dns.log", FormatAuto, map[string]int64{indDNS: 3, indIP: 2}, 6, 2, 4},
		{"testdata/zeek/conn.log", FormatZeek, map[string]int64{indC2: 1, indV6: 1}, 3, 0, 2},
		{"testdata/zeek/http.log", FormatAuto, map[string]int64{indURL: 1, indUA: 1}, 2, 0, 2},
		{"testdata/zeek/ssl.log", FormatAuto, map[string]int64{indSNI: 1, indCert: 1}, 2, 0, 2},
		{"testdata/zeek/files.log", FormatAuto, map[string]int64{indHash: 1}, 2, 0, 1},
		{"testdata/zeek/mixed.json", FormatZeek, map[string]int64{indDNS: 1, indIP: 1, indC2: 1, indURL: 1, indSNI: 1, indHash: 1}, 5, 1, 6},
		{"testdata/zeek/mixed.json", FormatAuto, map[string]int64{indDNS: 1, indIP: 1, indC2: 1, indURL: 1, indSNI: 1, indHash: 1}, 5, 1, 6},
		{"testdata/suricata/eve.json", FormatSuricata, map[string]int64{indDNS: 2, indIP: 1, indURL: 2, indSNI: 1, indCert: 1, indHash: 1, indC2: 1}, 7, 2, 7},
		{"testdata/suricata/eve.json", FormatAuto, map[string]int64{indDNS: 2, indIP: 1, indURL: 2, indSNI: 1, indCert: 1, indHash: 1, indC2: 1}, 7, 2, 7},
		{"testdata/stix/observed.jsonl", FormatAuto, map[string]int64{indDNS: 3, indIP: 3, indURL: 1}, 4, 2, 3},
		{"testdata/json/ecs.jsonl", FormatJSON, map[string]int64{indDNS: 1, indIP: 1, indHash: 1, indURL: 1}, 3, 2, 4},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.file, "testdata/")+"/"+c.format, func(t *testing.T) {
			sink := newMemSink(t)
			d := runDetector(t, sink, &FileSource{Path: c.file, Opts: InputOptions{Format: c.format, Mapping: mapping}})
			if got := sink.counts(); !maps.Equal(got, c.want) {
				t.Errorf("counts = %v, want %v", got, c.want)
			}
			st := d.Stats()
			if st.Events != c.events || st.Malformed != c.malformed {
				t.Errorf("events %d malformed %d, want %d and %d", st.Events, st.Malformed, c.events, c.malformed)
			}
			if n := len(sink.latest("sighting")); n != c.sightings {
				t.Errorf("%d sightings, want %d", n, c.sightings)
			}
			sink.checkRefs(t)
		})
	}
}

// The same events from standard input, one line at a time, agree with
// the file.
func TestStdinAndMalformedLog(t *testing.T) {
	data, err := os.ReadFile("testdata/zeek/dns.log")
	if err != nil {
		t.Fatal(err)
	}
	var logbuf bytes.Buffer
	sink := newMemSink(t)
	d, err := New(Config{Indicators: &StaticIndicators{List: testIndicators}, Sink: sink, Identity: testOrg,
		Logger: slog.New(slog.NewTextHandler(&logbuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(t.Context(), &ReaderSource{Label: "stdin", R: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if got := sink.counts(); got[indDNS] != 3 || got[indIP] != 2 {
		t.Errorf("counts = %v", got)
	}
	// The malformed lines are logged with their positions (lines 13 and 14).
	for _, pos := range []string{"pos=stdin:13", "pos=stdin:14"} {
		if !strings.Contains(logbuf.String(), pos) {
			t.Errorf("log lacks %s:\n%s", pos, logbuf.String())
		}
	}
}

// A failing sink keeps the sightings and writes them on a later flush,
// as new versions of the same sighting.
func TestSinkFailureAndVersions(t *testing.T) {
	sink := newMemSink(t)
	sink.fail = 2
	dir := t.TempDir()
	f, err := os.Create(dir + "/dns.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := New(Config{Indicators: &StaticIndicators{List: testIndicators}, Sink: sink, Identity: testOrg,
		Flush: 50 * time.Millisecond, Bucket: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(t.Context())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- d.Run(rctx, &DirSource{Dir: dir, Opts: InputOptions{Follow: true, PollInterval: 20 * time.Millisecond}})
	}()
	line := func(ts int, q string) {
		_, err := f.WriteString(strings.Join([]string{strconv.Itoa(ts) + ".0", "10.0.0.1", "10.0.0.53", q}, "\t") + "\n")
		if err != nil {
			t.Fatal(err)
		}
	}
	f.WriteString("#separator \\x09\n#path\tdns\n#fields\tts\tid.orig_h\tid.resp_h\tquery\n")
	line(1709287200, "evil.example.com")
	waitFor(t, 5*time.Second, func() bool { return sink.counts()[indDNS] == 1 })
	line(1709287210, "evil.example.com")
	line(1709287220, "evil.example.com")
	waitFor(t, 5*time.Second, func() bool { return sink.counts()[indDNS] == 3 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sg := sink.latest("sighting")
	if len(sg) != 1 {
		t.Fatalf("%d sightings, want one, versioned", len(sg))
	}
	for id := range sg {
		if n := len(sink.objs[id]); n < 2 {
			t.Errorf("sighting has %d versions, want at least 2", n)
		}
	}
	if d.Stats().SinkErrors < 2 {
		t.Errorf("sink errors %d, want 2", d.Stats().SinkErrors)
	}
}

// While the sink is unavailable the detector holds at most about
// MaxPending aggregated matches (plus the batches in flight) instead of
// reading its whole input into memory; once the sink is back every match
// is written.
func TestPendingMatchesBounded(t *testing.T) {
	var in strings.Builder
	const n = 3000
	for i := range n {
		// Every event in a bucket of its own: n distinct sightings.
		fmt.Fprintf(&in, `{"_path":"dns","ts":%d.5,"id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.53","query":"evil.example.com"}`+"\n", 1709287200+60*i)
	}
	sink := newMemSink(t)
	sink.gate = make(chan struct{})
	d, err := New(Config{Indicators: &StaticIndicators{List: testIndicators}, Sink: sink, Identity: testOrg,
		Flush: 20 * time.Millisecond, MaxPending: 100, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(t.Context(), &ReaderSource{Label: "stdin", R: strings.NewReader(in.String())}) }()
	time.Sleep(500 * time.Millisecond)
	// One batch of about 64 KiB (some 600 of these lines) beyond the
	// limit at most, and two more queued.
	m := d.Stats().Matches
	t.Logf("%d matches gathered while the sink is down", m)
	if m > 100+3*700 || m >= n {
		t.Errorf("%d matches gathered while the sink is down, limit 100", m)
	}
	close(sink.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := sink.counts()[indDNS]; got != n || len(sink.latest("sighting")) != n {
		t.Errorf("counted %d in %d sightings, want %d in %d", got, len(sink.latest("sighting")), n, n)
	}
}
