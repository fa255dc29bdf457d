package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cert is one national CERT's `mitra serve` in the assistance tests.
type cert struct {
	name, data string
	srv        *proc
	certOrg    string // the CERT's organisation
	operator   string // an operator organisation of its country (A only)
	assistCol  string
	drillCol   string
	bin        string
}

const peerKey = "MITRA_PEER_KEY"

// as is the environment of the CLI acting as user on c's server.
func (c *cert) as(user string) []string {
	return []string{"MITRA_URL=" + c.srv.base, "MITRA_USER=" + user, "MITRA_PASSWORD=" + user + "-password-1"}
}

// twoCERTs starts CERT A and CERT B, each a `mitra serve` with the
// assistance clock read from one clock file (so that the test moves time
// and never sleeps) and no background tick; each has an organisation and
// a user standing for the other, allowed to write (not read) its
// assistance and drill collections, and a federation peer for the other
// with sealed credentials.
func twoCERTs(t *testing.T, clockFile string) (a, b *cert) {
	bin, err := buildMitra()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(peerKey, base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
	mk := func(name, other string) *cert {
		c := &cert{name: name, data: t.TempDir(), bin: bin}
		d := c.data
		runCLI(t, bin, nil, "migrate", "--data", d)
		c.certOrg = strings.TrimSpace(runCLI(t, bin, nil, "org", "create", "--data", d, "CERT-"+name))
		runCLI(t, bin, nil, "org", "create", "--data", d, "Peer-"+other)
		users := [][2]string{{"cert", "CERT-" + name}, {"peer-" + strings.ToLower(other), "Peer-" + other}}
		if name == "A" {
			c.operator = strings.TrimSpace(runCLI(t, bin, nil, "org", "create", "--data", d, "Grid-Operator-A"))
			users = append(users, [2]string{"op", "Grid-Operator-A"})
		}
		for _, u := range users {
			runCLI(t, bin, []string{"MITRA_USER_PASSWORD=" + u[0] + "-password-1"}, "user", "create", "--data", d, "--org", u[1], u[0])
		}
		for _, alias := range []string{"assist", "directory", "drill", "drill-directory", "incidents"} {
			id := strings.TrimSpace(runCLI(t, bin, nil, "collection", "create", "--data", d, "--title", alias, "--alias", alias, "--readers", "cert", "--writers", "cert"))
			switch alias {
			case "assist":
				c.assistCol = id
			case "drill":
				c.drillCol = id
			}
		}
		for _, alias := range []string{"assist", "drill"} {
			runCLI(t, bin, nil, "collection", "grant", "--data", d, alias, "--write", "--org", "Peer-"+other)
		}
		if name == "A" {
			runCLI(t, bin, nil, "collection", "grant", "--data", d, "incidents", "--read", "--write", "--org", "Grid-Operator-A")
		}
		c.srv = launchServer(t, bin, "--data", d, "--assist-tick", "0", "--assist-clock-file", clockFile, "--incident-tick", "1h")
		c.srv.waitListening(t)
		return c
	}
	a, b = mk("A", "B"), mk("B", "A")
	for _, pair := range [][2]*cert{{a, b}, {b, a}} {
		local, remote := pair[0], pair[1]
		runCLI(t, bin, []string{"MITRA_PEER_PASSWORD=peer-" + strings.ToLower(local.name) + "-password-1"}, "peer", "add", "--data", local.data, remote.name,
			"--url", remote.srv.base+"/api/", "--org", "Peer-"+remote.name, "--user", "peer-"+strings.ToLower(local.name))
	}
	return a, b
}

func setClock(t *testing.T, file string, at time.Time) {
	t.Helper()
	if err := os.WriteFile(file, []byte(at.UTC().Format(time.RFC3339Nano)), 0o600); err != nil {
		t.Fatal(err)
	}
}

type request struct {
	ID           string    `json:"id"`
	State        string    `json:"state"`
	Contact      string    `json:"contact"`
	Incoming     bool      `json:"incoming"`
	Overdue      bool      `json:"overdue"`
	Escalations  int       `json:"escalations"`
	Due          time.Time `json:"due"`
	Acknowledged time.Time `json:"acknowledged"`
	Responded    time.Time `json:"responded"`
	Concerns     []string  `json:"concerns"`
	Steps        []struct {
		ID       string    `json:"id"`
		Message  string    `json:"message"`
		Created  time.Time `json:"created"`
		Received time.Time `json:"received"`
	} `json:"steps"`
	Deliveries []struct {
		Attempts  int       `json:"attempts"`
		LastError string    `json:"last_error"`
		Delivered time.Time `json:"delivered"`
	} `json:"deliveries"`
}

func showRequest(t *testing.T, c *cert, id string) request {
	t.Helper()
	var r request
	out := runCLI(t, c.bin, c.as("cert"), "assist", "show", "--json", id)
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("assist show: %v\n%s", err, out)
	}
	return r
}

type tickOut struct {
	Escalated []string `json:"escalated"`
	Overdue   []string `json:"overdue"`
	Delivered int      `json:"delivered"`
	Failed    int      `json:"failed"`
	Errors    []string `json:"errors"`
}

func assistTick(t *testing.T, c *cert) tickOut {
	t.Helper()
	var r tickOut
	out := runCLI(t, c.bin, c.as("cert"), "assist", "tick", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("assist tick: %v\n%s", err, out)
	}
	return r
}

// TestAssistanceEndToEnd: an operator in country A reports an incident
// under NIS2; CERT A acknowledges it and raises an assistance request to
// CERT B's duty desk (two `mitra serve` processes, over their federation
// peers); B acknowledges; the request is overdue at 4 hours and escalates
// to B's head of CERT; at 8 hours nobody is left to escalate to; B
// answers at 9 hours. Every clock is the injected one (a clock file both
// servers read): the test never sleeps. Both servers show the same
// history. A request to an unknown contact is kept and retried.
func TestAssistanceEndToEnd(t *testing.T) {
	clockFile := filepath.Join(t.TempDir(), "clock")
	t0 := time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)
	setClock(t, clockFile, t0)
	a, b := twoCERTs(t, clockFile)

	// The incident, under NIS2, acknowledged by CERT A.
	out := runCLI(t, a.bin, a.as("op"), "incident", "report", "--json", "--collection", "incidents", "--regime", "nis2", "--cert", a.certOrg,
		"--name", "Interconnector SCADA outage", "--sector", "energy", "--severity", "high", "--cross-border")
	var inc struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &inc); err != nil || inc.ID == "" {
		t.Fatalf("incident report: %v\n%s", err, out)
	}
	out = runCLI(t, a.bin, a.as("cert"), "incident", "update", "--json", inc.ID, "--state", "acknowledged")
	if !strings.Contains(out, `"acknowledged"`) {
		t.Fatalf("incident acknowledgement: %s", out)
	}

	// CERT B's two contacts in A's directory.
	taxii := "B/" + b.assistCol
	duty := strings.TrimSpace(runCLI(t, a.bin, a.as("cert"), "poc", "add", "CERT-B duty desk", "--country", "BB", "--organisation", b.certOrg,
		"--organisation-name", "CERT-B", "--kind", "technical", "--taxii", taxii, "--email", "duty@cert-b.test", "--time-zone", "Asia/Bangkok",
		"--days", "mon,tue,wed,thu,fri", "--hours", "08:00-18:00", "--order", "0"))
	head := strings.TrimSpace(runCLI(t, a.bin, a.as("cert"), "poc", "add", "CERT-B head", "--country", "BB", "--organisation", b.certOrg,
		"--organisation-name", "CERT-B", "--kind", "technical", "--taxii", taxii, "--order", "1"))
	if list := runCLI(t, a.bin, a.as("cert"), "poc", "list"); !strings.Contains(list, duty) || !strings.Contains(list, head) || !strings.Contains(list, "taxii,email") {
		t.Fatalf("poc list: %s", list)
	}

	// The directory is shared with B by an ordinary push link: B's
	// directory lists A's entries with their channels and working hours.
	runCLI(t, b.bin, nil, "collection", "grant", "--data", b.data, "directory", "--write", "--org", "Peer-A")
	runCLI(t, a.bin, nil, "collection", "grant", "--data", a.data, "directory", "--read", "--org", "Peer-B")
	runCLI(t, a.bin, []string{"MITRA_PEER_PASSWORD=peer-a-password-1"}, "peer", "add", "--data", a.data, "B-directory", "--url", b.srv.base+"/api/",
		"--org", "Peer-B", "--user", "peer-a", "--push", "directory="+collectionID(t, b, "directory"), "--interval", "1h")
	runCLI(t, a.bin, nil, "peer", "sync", "--data", a.data, "B-directory")
	var shared []struct {
		ID       string `json:"id"`
		Channels []struct {
			Type string `json:"type"`
		} `json:"channels"`
		Hours struct {
			TimeZone string `json:"time_zone"`
		} `json:"working_hours"`
	}
	if err := json.Unmarshal([]byte(runCLI(t, b.bin, b.as("cert"), "poc", "list", "--json")), &shared); err != nil || len(shared) != 2 {
		t.Fatalf("B's directory after the push: %+v, %v", shared, err)
	}
	for _, c := range shared {
		if c.ID == duty && (len(c.Channels) != 2 || c.Hours.TimeZone != "Asia/Bangkok") {
			t.Errorf("shared entry: %+v", c)
		}
	}

	id := strings.TrimSpace(runCLI(t, a.bin, a.as("cert"), "assist", "raise", "--contact", duty, "--kind", "coordination", "--concerns", inc.ID,
		"--response-time", "4h", "--content", "Coordinate the isolation of the interconnector"))
	r := showRequest(t, a, id)
	if r.State != "sent" || !r.Due.Equal(t0.Add(4*time.Hour)) || !slices.Equal(r.Concerns, []string{inc.ID}) {
		t.Fatalf("raised: %+v", r)
	}
	if tk := assistTick(t, a); tk.Delivered != 1 {
		t.Fatalf("A's tick: %+v", tk)
	}
	rb := showRequest(t, b, id)
	if !rb.Incoming || rb.Contact != duty || rb.State != "sent" {
		t.Fatalf("B's copy: %+v", rb)
	}
	// The peer account of A on B writes but cannot read the request.
	if _, _, err := mitra(t, envMap(b.as("peer-a")), "", "assist", "show", id); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("A's peer account reading B's copy: %v", err)
	}

	setClock(t, clockFile, t0.Add(30*time.Minute))
	runCLI(t, b.bin, b.as("cert"), "assist", "step", id, "acknowledge", "--content", "On it")
	if tk := assistTick(t, b); tk.Delivered != 1 {
		t.Fatalf("B's tick: %+v", tk)
	}
	if r = showRequest(t, a, id); r.State != "acknowledged" || !r.Acknowledged.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("A after the acknowledgement: %+v", r)
	}

	setClock(t, clockFile, t0.Add(4*time.Hour-time.Second))
	if tk := assistTick(t, a); len(tk.Escalated) != 0 {
		t.Fatalf("escalated early: %+v", tk)
	}
	setClock(t, clockFile, t0.Add(4*time.Hour))
	if tk := assistTick(t, a); !slices.Equal(tk.Escalated, []string{id}) || tk.Delivered != 1 {
		t.Fatalf("escalation: %+v", tk)
	}
	if r = showRequest(t, a, id); r.Contact != head || r.Escalations != 1 || !r.Due.Equal(t0.Add(8*time.Hour)) || r.Overdue {
		t.Fatalf("A after the escalation: %+v", r)
	}
	if rb = showRequest(t, b, id); rb.Contact != head || rb.Escalations != 1 {
		t.Fatalf("B after the escalation: %+v", rb)
	}
	setClock(t, clockFile, t0.Add(8*time.Hour))
	if tk := assistTick(t, a); len(tk.Escalated) != 0 || !slices.Equal(tk.Overdue, []string{id}) {
		t.Fatalf("overdue with nobody left: %+v", tk)
	}
	if list := runCLI(t, a.bin, a.as("cert"), "assist", "list"); !strings.Contains(list, "(overdue)") {
		t.Errorf("assist list does not show the overdue request: %s", list)
	}

	setClock(t, clockFile, t0.Add(9*time.Hour))
	runCLI(t, b.bin, b.as("cert"), "assist", "step", id, "answer", "--content", "Isolated at 17:50 UTC")
	assistTick(t, b)
	r, rb = showRequest(t, a, id), showRequest(t, b, id)
	if r.State != "answered" || !r.Responded.Equal(t0.Add(9*time.Hour)) || r.Overdue {
		t.Fatalf("A after the answer: %+v", r)
	}
	if len(r.Steps) != 3 || len(rb.Steps) != 3 {
		t.Fatalf("histories: A %d steps, B %d", len(r.Steps), len(rb.Steps))
	}
	for i := range r.Steps {
		if r.Steps[i].ID != rb.Steps[i].ID || !r.Steps[i].Created.Equal(rb.Steps[i].Created) || r.Steps[i].Message != rb.Steps[i].Message {
			t.Errorf("step %d differs: A %+v, B %+v", i, r.Steps[i], rb.Steps[i])
		}
	}
	if msgs := []string{r.Steps[0].Message, r.Steps[1].Message, r.Steps[2].Message}; !slices.Equal(msgs, []string{"acknowledge", "escalate", "answer"}) {
		t.Errorf("history: %v", msgs)
	}

	// A request to a contact nobody knows yet is kept, retried, and
	// delivered once the contact is in the directory.
	const later = "identity--0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
	id2 := strings.TrimSpace(runCLI(t, a.bin, a.as("cert"), "assist", "raise", "--contact", later, "--kind", "information", "--concerns", inc.ID, "--response-time", "1h"))
	if tk := assistTick(t, a); tk.Failed != 1 || !strings.Contains(strings.Join(tk.Errors, ""), "unknown contact") {
		t.Fatalf("tick to an unknown contact: %+v", tk)
	}
	if show := runCLI(t, a.bin, a.as("cert"), "assist", "show", id2); !strings.Contains(show, "pending after 1 attempts") {
		t.Errorf("assist show of the undelivered request: %s", show)
	}
	runCLI(t, a.bin, a.as("cert"), "poc", "add", "CERT-B night desk", "--id", later, "--country", "BB", "--organisation", b.certOrg, "--kind", "technical", "--taxii", taxii, "--order", "2")
	setClock(t, clockFile, t0.Add(9*time.Hour+time.Minute))
	if tk := assistTick(t, a); tk.Delivered != 1 {
		t.Fatalf("retry after the contact appeared: %+v", tk)
	}
	if rb := showRequest(t, b, id2); !rb.Incoming {
		t.Errorf("B after the retry: %+v", rb)
	}
}

// envMap turns KEY=VALUE pairs into the in-process CLI's environment.
func envMap(kv []string) map[string]string {
	m := map[string]string{}
	for _, e := range kv {
		k, v, _ := strings.Cut(e, "=")
		m[k] = v
	}
	return m
}
