package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/stix"
)

// drillScenario has 30 steps: three incidents by fictitious operators
// reported to participant B under NIS2 and GosSOPKA, nine indicators,
// four requests to participant B, seven answers that B's server plays
// (some in time, some late) and seven steps on the incidents (B's
// acknowledgements and feedback on A's server, the operator's follow-up
// reports), over 80 drill hours so that regime deadlines pass.
const drillScenario = `name: Regional incident drill
start: 2030-06-02T01:00:00Z
operator: {user: op, password_env: DRILL_OP_PASSWORD}
participants:
  - name: B
    contact: %s
    url: %s
    user: cert
    password_env: DRILL_B_PASSWORD
    organisation: %s
    incident_account: {user: peer-b, password_env: DRILL_B_INCIDENT_PASSWORD}
steps:
  - at: 0m
    incident: {id: i1, operator: Fictitious Grid Co, name: Substation outage, sector: energy, regime: nis2, cert: B}
  - at: 1m
    indicator: {id: ind1, name: C2 server, pattern: "[ipv4-addr:value = '198.51.100.1']"}
  - at: 2m
    indicator: {id: ind2, name: Phishing domain, pattern: "[domain-name:value = 'grid-update.example']"}
  - at: 3m
    incident: {id: i2, operator: Fictitious Water Utility, name: Pump controller tampering, sector: water, regime: nis2, cert: B}
  - at: 4m
    indicator: {id: ind3, name: Dropper, pattern: "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"}
  - at: 5m
    request: {id: r1, to: B, kind: takedown, concerns: [i1, ind1], response_time: 1h, acknowledge_within: 15m, content: "Take down the C2"}
  - at: 6m
    indicator: {id: ind4, name: Second C2, pattern: "[ipv4-addr:value = '198.51.100.2']"}
  - at: 8m
    request: {id: r2, to: B, kind: blocking, concerns: [ind2], response_time: 30m, acknowledge_within: 10m}
  - at: 10m
    by: B
    respond: {request: r1, message: acknowledge}
  - at: 12m
    indicator: {id: ind5, name: Exfiltration host, pattern: "[ipv4-addr:value = '198.51.100.5']"}
  - at: 15m
    incident: {id: i3, operator: Fictitious Rail Co, name: Signalling ransomware, sector: transport, regime: gossopka-significant, cert: B}
  - at: 20m
    request: {id: r3, to: B, kind: information, concerns: [i3], response_time: 2h, acknowledge_within: 20m}
  - at: 25m
    by: B
    respond: {request: r2, message: acknowledge}
  - at: 30m
    indicator: {id: ind6, name: Ransom note site, pattern: "[domain-name:value = 'pay-rail.example']"}
  - at: 35m
    by: B
    respond: {request: r1, message: answer, content: "Taken down"}
  - at: 40m
    indicator: {id: ind7, name: Ransomware sample, pattern: "[file:hashes.MD5 = '44d88612fea8a8f36de82e1278abb02f']"}
  - at: 45m
    by: B
    respond: {request: r3, message: more-information, content: "Which sample?"}
  - at: 50m
    request: {id: r4, to: B, kind: analysis, concerns: [ind6, ind7], response_time: 1h, acknowledge_within: 15m}
  - at: 55m
    by: B
    respond: {request: r2, message: decline, content: "Not in our jurisdiction"}
  - at: 60m
    indicator: {id: ind8, name: Scanner, pattern: "[ipv4-addr:value = '198.51.100.8']"}
  - at: 70m
    by: B
    respond: {request: r4, message: acknowledge}
  - at: 80m
    by: B
    update: {incident: i1, state: acknowledged, text: "CSIRT B has the early warning"}
  - at: 85m
    update: {incident: i1, report: intermediate, text: "Notification: substation isolated"}
  - at: 90m
    by: B
    respond: {request: r3, message: answer, content: "Sample analysed"}
  - at: 95m
    update: {incident: i1, report: final, text: "Root cause: phishing"}
  - at: 100m
    indicator: {id: ind9, name: Last C2, pattern: "[ipv4-addr:value = '198.51.100.9']"}
  - at: 26h
    by: B
    update: {incident: i2, state: acknowledged}
  - at: 27h
    by: B
    update: {incident: i1, report: feedback, text: "Thanks, closed on our side"}
  - at: 80h
    update: {incident: i2, report: intermediate, text: "Late notification"}
`

// TestDrillEndToEnd: CERT A runs a 23-step drill with CERT B (two `mitra
// serve` processes on one injected clock); the report per participant
// says how long each request took and which stages were met and missed;
// no drill object crosses a real federation link (push or pull), while a
// real object in the same collection does; drill requests stay out of
// the real assistance service.
func TestDrillEndToEnd(t *testing.T) {
	dir := t.TempDir()
	clockFile := filepath.Join(dir, "clock")
	setClock(t, clockFile, time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC))
	a, b := twoCERTs(t, clockFile)
	bContact := strings.TrimSpace(runCLI(t, a.bin, a.as("cert"), "poc", "add", "--drill", "CERT-B drill desk", "--country", "BB", "--organisation", b.certOrg,
		"--kind", "technical", "--taxii", "B/"+b.drillCol))

	// Real federation links that could carry drill data: A pushes its drill
	// collection to B's mirror; B pulls A's drill collection into mirror2.
	// One real indicator sits in A's drill collection: it must cross, the
	// drill's objects must not.
	for _, m := range []string{"mirror", "mirror2"} {
		runCLI(t, b.bin, nil, "collection", "create", "--data", b.data, "--title", m, "--alias", m, "--readers", "cert", "--writers", "cert")
		runCLI(t, b.bin, nil, "collection", "grant", "--data", b.data, m, "--write", "--org", "Peer-A")
	}
	mirror := collectionID(t, b, "mirror")
	runCLI(t, a.bin, nil, "collection", "grant", "--data", a.data, "drill", "--read", "--org", "Peer-B")
	runCLI(t, a.bin, []string{"MITRA_PEER_PASSWORD=peer-a-password-1"}, "peer", "add", "--data", a.data, "B-real", "--url", b.srv.base+"/api/",
		"--org", "Peer-B", "--user", "peer-a", "--push", "drill="+mirror, "--interval", "1h")
	runCLI(t, b.bin, []string{"MITRA_PEER_PASSWORD=peer-b-password-1"}, "peer", "add", "--data", b.data, "A-real", "--url", a.srv.base+"/api/",
		"--org", "Peer-A", "--user", "peer-b", "--pull", a.drillCol+"=mirror2", "--interval", "1h")
	const real = "indicator--6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"
	ac := &client{t: t, base: a.srv.base, user: "cert", pass: "cert-password-1"}
	body := `{"objects":[{"type":"indicator","spec_version":"2.1","id":"` + real + `","created":"2030-06-01T00:00:00.000Z","modified":"2030-06-01T00:00:00.000Z",` +
		`"pattern":"[ipv4-addr:value = '192.0.2.77']","pattern_type":"stix","valid_from":"2030-06-01T00:00:00Z"}]}`
	if code, _, out := ac.do("POST", "/api/collections/"+a.drillCol+"/objects/", []byte(body)); code != 202 {
		t.Fatalf("real indicator: %d %s", code, out)
	}

	// B plays the CERT of the drill's incidents on A's server with its
	// account there (Peer-B, the organisation of B's real federation link
	// too: only the exercise marking keeps the incidents off that link);
	// A's Grid-Operator-A plays the fictitious operators.
	peerB := orgID(t, a, "Peer-B")
	runCLI(t, a.bin, nil, "collection", "grant", "--data", a.data, "drill", "--read", "--write", "--org", "Grid-Operator-A")
	// A real incident beside the drill, on A's real incident service.
	realInc := struct {
		ID string `json:"id"`
	}{}
	if err := json.Unmarshal([]byte(runCLI(t, a.bin, a.as("op"), "incident", "report", "--json", "--collection", "incidents", "--cert", a.certOrg,
		"--name", "Real outage", "--sector", "energy", "--severity", "low")), &realInc); err != nil || realInc.ID == "" {
		t.Fatalf("real incident: %v", err)
	}

	scenario := filepath.Join(dir, "drill.yaml")
	if err := os.WriteFile(scenario, []byte(fmt.Sprintf(drillScenario, bContact, b.srv.base, peerB)), 0o600); err != nil {
		t.Fatal(err)
	}
	reportFile := filepath.Join(dir, "report.json")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A's log:\n%s", a.srv.logs)
		}
	})
	out := runCLI(t, a.bin, append(a.as("cert"), "DRILL_B_PASSWORD=cert-password-1",
		"DRILL_OP_PASSWORD=op-password-1", "DRILL_B_INCIDENT_PASSWORD=peer-b-password-1"), "drill", "run", scenario, "--clock-file", clockFile, "--report", reportFile)
	var rep struct {
		Participants []struct {
			Name                 string `json:"name"`
			StagesMet            int    `json:"stages_met"`
			StagesMissed         int    `json:"stages_missed"`
			IncidentStagesMet    int    `json:"incident_stages_met"`
			IncidentStagesMissed int    `json:"incident_stages_missed"`
			Incidents            []struct {
				ID     string `json:"id"`
				STIXID string `json:"stix_id"`
				Regime string `json:"regime"`
				State  string `json:"state"`
				Stages []struct {
					Name     string    `json:"name"`
					Party    string    `json:"party"`
					Deadline time.Time `json:"deadline"`
					MetAt    time.Time `json:"met_at"`
					Outcome  string    `json:"outcome"`
				} `json:"stages"`
			} `json:"incidents"`
			Requests []struct {
				ID                string        `json:"id"`
				Acknowledged      bool          `json:"acknowledged"`
				TimeToAcknowledge time.Duration `json:"time_to_acknowledge_ns"`
				Answered          bool          `json:"answered"`
				TimeToAnswer      time.Duration `json:"time_to_answer_ns"`
				State             string        `json:"state"`
				Stages            []struct {
					Name    string `json:"name"`
					Outcome string `json:"outcome"`
				} `json:"stages"`
			} `json:"requests"`
		} `json:"participants"`
	}
	b2, err := os.ReadFile(reportFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b2, &rep); err != nil || len(rep.Participants) != 1 {
		t.Fatalf("report: %v\n%s", err, b2)
	}
	p := rep.Participants[0]
	type want struct {
		ack       time.Duration // 0: not acknowledged
		answer    time.Duration // 0: not answered
		state     string
		ackStage  string
		respStage string
	}
	wants := map[string]want{
		"r1": {5 * time.Minute, 30 * time.Minute, "answered", "met", "met"},
		"r2": {17 * time.Minute, 47 * time.Minute, "declined", "missed", "missed"},
		"r3": {0, 70 * time.Minute, "answered", "missed", "met"},
		"r4": {20 * time.Minute, 0, "acknowledged", "missed", "missed"},
	}
	if p.Name != "B" || len(p.Requests) != 4 || p.StagesMet != 3 || p.StagesMissed != 5 {
		t.Errorf("participant report: %+v\n%s", p, out)
	}
	for _, r := range p.Requests {
		w := wants[r.ID]
		if r.Acknowledged != (w.ack != 0) || r.TimeToAcknowledge != w.ack || r.Answered != (w.answer != 0) || r.TimeToAnswer != w.answer || r.State != w.state ||
			len(r.Stages) != 2 || r.Stages[0].Outcome != w.ackStage || r.Stages[1].Outcome != w.respStage {
			t.Errorf("request %s: %+v, want %+v", r.ID, r, w)
		}
	}
	// The regime stages of the drill's incidents, on the drill clock: met
	// in time, missed (met late or overdue at the end, 80h) or open.
	t0 := time.Date(2030, 6, 2, 1, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type stageWant struct {
		name, party, outcome string
		deadline, met        time.Time // zero: none
	}
	stageWants := map[string][]stageWant{
		"i1": {{"early-warning", "operator", "met", at(24 * time.Hour), t0}, {"acknowledgement", "cert", "met", at(24 * time.Hour), at(80 * time.Minute)},
			{"notification", "operator", "met", at(72 * time.Hour), at(85 * time.Minute)}, {"final-report", "operator", "met", at(85*time.Minute + 30*24*time.Hour), at(95 * time.Minute)},
			{"feedback", "cert", "met", at(95*time.Minute + 14*24*time.Hour), at(27 * time.Hour)}},
		"i2": {{"early-warning", "operator", "met", at(3*time.Minute + 24*time.Hour), at(3 * time.Minute)},
			{"acknowledgement", "cert", "missed", at(3*time.Minute + 24*time.Hour), at(26 * time.Hour)},
			{"notification", "operator", "missed", at(3*time.Minute + 72*time.Hour), at(80 * time.Hour)},
			{"final-report", "operator", "open", at(80*time.Hour + 30*24*time.Hour), time.Time{}}, {"feedback", "cert", "open", time.Time{}, time.Time{}}},
		"i3": {{"notification", "operator", "met", at(15*time.Minute + 3*time.Hour), at(15 * time.Minute)},
			{"acknowledgement", "cert", "missed", at(15*time.Minute + 24*time.Hour), time.Time{}},
			{"final-report", "operator", "open", at(15*time.Minute + 30*24*time.Hour), time.Time{}}, {"feedback", "cert", "open", time.Time{}, time.Time{}}},
	}
	if len(p.Incidents) != 3 || p.IncidentStagesMet != 2 || p.IncidentStagesMissed != 2 {
		t.Errorf("incidents in B's report: %d, CERT stages met %d, missed %d; want 3, 2, 2", len(p.Incidents), p.IncidentStagesMet, p.IncidentStagesMissed)
	}
	var drillIncidents []string
	for _, in := range p.Incidents {
		drillIncidents = append(drillIncidents, in.STIXID)
		want := stageWants[in.ID]
		if len(in.Stages) != len(want) {
			t.Errorf("incident %s: %d stages, want %d", in.ID, len(in.Stages), len(want))
			continue
		}
		for i, s := range in.Stages {
			w := want[i]
			if s.Name != w.name || s.Party != w.party || s.Outcome != w.outcome || !s.Deadline.Equal(w.deadline) || !s.MetAt.Equal(w.met) {
				t.Errorf("incident %s stage %d: %+v, want %+v", in.ID, i, s, w)
			}
		}
	}
	if !strings.Contains(out, "Incidents as CERT: 2 stages met, 2 missed") {
		t.Errorf("printed report lacks the incidents:\n%s", out)
	}
	// No drill incident in the real incident service (listing or by id),
	// for the operator, the CERT that acknowledged them or A's CERT; the
	// drill's incident service holds them.
	for _, u := range []struct{ user, pass string }{{"op", "op-password-1"}, {"peer-b", "peer-b-password-1"}, {"cert", "cert-password-1"}} {
		uc := &client{t: t, base: a.srv.base, user: u.user, pass: u.pass}
		code, _, body := uc.do("GET", "/x-mitra-incidents/", nil)
		if code != 200 {
			t.Fatalf("real incident listing as %s: %d %s", u.user, code, body)
		}
		for _, id := range drillIncidents {
			if strings.Contains(string(body), id) {
				t.Errorf("drill incident %s in the real incident listing of %s", id, u.user)
			}
			if code, _, _ := uc.do("GET", "/x-mitra-incidents/"+id, nil); code != 404 {
				t.Errorf("drill incident %s from the real incident service as %s: %d", id, u.user, code)
			}
		}
		if u.user == "op" && !strings.Contains(string(body), realInc.ID) {
			t.Errorf("the real incident is missing from the real listing: %s", body)
		}
	}
	opc := &client{t: t, base: a.srv.base, user: "op", pass: "op-password-1"}
	if code, _, body := opc.do("GET", "/x-mitra-drill/incidents/", nil); code != 200 || strings.Count(string(body), `"regime_title"`) != 3 || strings.Contains(string(body), realInc.ID) {
		t.Errorf("the drill's incident listing: %d %s", code, body)
	}
	// Nor in the real exports of the drill collection.
	for _, f := range []string{"stix", "csv"} {
		code, _, body := ac.do("GET", "/x-mitra-export/"+f+"?collection="+a.drillCol, nil)
		if code != 200 {
			t.Fatalf("export %s: %d %s", f, code, body)
		}
		for _, id := range drillIncidents {
			if strings.Contains(string(body), id) {
				t.Errorf("drill incident %s in the %s export", id, f)
			}
		}
		if strings.Contains(string(body), "EXERCISE") || strings.Contains(string(body), "198.51.100.") {
			t.Errorf("drill data in the %s export:\n%s", f, body)
		}
	}
	if !strings.Contains(out, "Participant B: 3 stages met, 5 missed") || !strings.Contains(out, "r1 (takedown): acknowledged after 5m0s, answered after 30m0s") {
		t.Errorf("printed report:\n%s", out)
	}

	// B holds the drill's requests in its drill service only.
	if l := runCLI(t, b.bin, b.as("cert"), "assist", "list", "--json"); strings.TrimSpace(l) != "[]" && strings.TrimSpace(l) != "null" {
		t.Errorf("drill requests in B's real assistance service: %s", l)
	}
	var drillList []json.RawMessage
	if err := json.Unmarshal([]byte(runCLI(t, b.bin, b.as("cert"), "assist", "list", "--drill", "--json")), &drillList); err != nil || len(drillList) != 4 {
		t.Errorf("B's drill requests: %d, %v", len(drillList), err)
	}

	// The real links run: only the real indicator crosses.
	runCLI(t, a.bin, nil, "peer", "sync", "--data", a.data, "B-real")
	// The pull brings the same real indicator B already has from the push
	// (owned by the push's peer organisation, so the pull's copy is refused
	// for ownership); its refusals of the drill objects say why.
	runCLI(t, b.bin, nil, "peer", "sync", "--data", b.data, "A-real")
	if show := runCLI(t, b.bin, nil, "peer", "show", "--data", b.data, "A-real"); strings.Count(show, "exercise data does not cross a real federation link") < 12 {
		t.Errorf("pull of A's drill collection:\n%s", show)
	}
	bc := &client{t: t, base: b.srv.base, user: "cert", pass: "cert-password-1"}
	drillObjects := 0
	for _, col := range []string{"mirror", "mirror2"} {
		code, _, body := bc.do("GET", "/api/collections/"+collectionID(t, b, col)+"/objects/", nil)
		var env struct {
			Objects []json.RawMessage `json:"objects"`
		}
		if code != 200 || json.Unmarshal(body, &env) != nil {
			t.Fatalf("GET %s: %d %s", col, code, body)
		}
		var ids []string
		for _, o := range env.Objects {
			var h struct{ ID string }
			_ = json.Unmarshal(o, &h)
			ids = append(ids, h.ID)
			if stix.IsExercise(o) {
				t.Errorf("drill object %s in the real federation link's %s", h.ID, col)
			}
		}
		if col == "mirror" && !slices.Contains(ids, real) {
			t.Errorf("%s lacks the real indicator: %v", col, ids)
		}
	}
	for _, id := range drillIncidents {
		for _, col := range []string{"mirror", "mirror2"} {
			if code, _, _ := bc.do("GET", "/api/collections/"+collectionID(t, b, col)+"/objects/"+id+"/", nil); code != 404 {
				t.Errorf("drill incident %s reached B's %s over a real link: %d", id, col, code)
			}
		}
	}
	// The drill collection on A does hold the drill's objects (the filter,
	// not an empty source, kept them out).
	for _, id := range ac.readAll(a.drillCol, false) {
		if id != real && !strings.HasPrefix(id, "marking-definition--") {
			drillObjects++
		}
	}
	if drillObjects < 12 {
		t.Errorf("A's drill collection holds %d drill objects", drillObjects)
	}
}

// orgID finds an organisation's identity id by name through the CLI.
func orgID(t *testing.T, c *cert, name string) string {
	t.Helper()
	for _, line := range strings.Split(runCLI(t, c.bin, nil, "org", "list", "--data", c.data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == name {
			return f[0]
		}
	}
	t.Fatalf("no organisation %s on %s", name, c.name)
	return ""
}

// collectionID finds a collection's id by alias through the CLI.
func collectionID(t *testing.T, c *cert, alias string) string {
	t.Helper()
	for _, line := range strings.Split(runCLI(t, c.bin, nil, "collection", "list", "--data", c.data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && slices.Contains(f, alias) {
			return f[0]
		}
	}
	t.Fatalf("no collection %s on %s", alias, c.name)
	return ""
}
