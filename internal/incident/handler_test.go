package incident_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitra-cert/mitra/internal/access"
	"github.com/mitra-cert/mitra/internal/incident"
	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

// TestAPIFlowAndErrors: report, acknowledge, follow up over HTTP; every
// error is a TAXII error message with its status.
func TestAPIFlowAndErrors(t *testing.T) {
	w := newWorld(t, notify.Targets{})
	w.user("op", w.operator, access.RoleAnalyst)
	w.user("cert", w.cert, access.RoleAnalyst)
	a := w.api(nil)
	status, body := a.do("op", http.MethodPost, "", incident.Report{Collection: w.coll, Regime: "gossopka-significant", CERT: w.cert,
		Name: "Pump station PLC tampering", Sector: "water", Severity: "critical", AwareAt: w.clock.Now().Add(-time.Hour),
		Related: []string{"malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061"}})
	if status != http.StatusCreated {
		t.Fatalf("report: %d %s", status, body)
	}
	var inc incident.Incident
	_ = json.Unmarshal(body, &inc)
	if status, body = a.do("cert", http.MethodPost, inc.ID+"/transition", incident.TransitionRequest{State: "acknowledged", Note: "ok"}); status != http.StatusOK {
		t.Fatalf("acknowledge: %d %s", status, body)
	}
	status, body = a.do("op", http.MethodPost, inc.ID+"/reports", incident.FollowUp{Kind: "final", Text: "root cause: exposed HMI"})
	var fu incident.FollowUpResponse
	if err := json.Unmarshal(body, &fu); status != http.StatusCreated || err != nil || !strings.HasPrefix(fu.Report, "report--") {
		t.Fatalf("follow-up: %d %s", status, body)
	}
	if s := stageOf(t, fu.Incident, "final-report"); s.Status != incident.StatusMet || s.Met.Ref != fu.Report {
		t.Fatalf("final-report = %+v", s)
	}
	// The report refers to the incident, marked and released like it.
	page, err := w.st.QueryObjects(t.Context(), w.coll, storeQuery(fu.Report))
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("report object: %v, %v", page, err)
	}
	var rep struct {
		ObjectRefs []string `json:"object_refs"`
		Markings   []string `json:"object_marking_refs"`
		Recipients []string `json:"x_mitra_recipients"`
	}
	_ = json.Unmarshal(page.Entries[0].Raw, &rep)
	if len(rep.ObjectRefs) != 1 || rep.ObjectRefs[0] != inc.ID || len(rep.Recipients) != 1 || rep.Recipients[0] != w.cert ||
		rep.Markings[0] != "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003" {
		t.Fatalf("report = %s", page.Entries[0].Raw)
	}
	for _, p := range []string{"regimes", "extension-definition", "schema"} {
		if status, body := a.do("op", http.MethodGet, p, nil); status != http.StatusOK || !json.Valid(body) {
			t.Errorf("GET %s: %d %s", p, status, body)
		}
	}
	// Errors.
	req, _ := http.NewRequest(http.MethodPost, a.ts.URL+incident.Prefix, bytes.NewReader([]byte(`{}`)))
	req.Header.Set("Content-Type", "text/plain")
	req.SetBasicAuth("op", password)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	errs := []struct {
		user, method, path string
		body               any
		status             int
	}{
		{"", http.MethodGet, "", nil, http.StatusUnauthorized},
		{"op", http.MethodPost, "", map[string]any{"nonsense": 1}, http.StatusBadRequest},
		{"op", http.MethodPost, "", incident.Report{Collection: w.coll, Regime: "dora"}, http.StatusBadRequest},
		{"op", http.MethodPost, inc.ID + "/stages/feedback", incident.StageRequest{}, http.StatusForbidden},
		{"cert", http.MethodPost, inc.ID + "/transition", incident.TransitionRequest{State: "reported"}, http.StatusConflict},
		{"cert", http.MethodPost, inc.ID + "/transition", incident.TransitionRequest{State: "solved"}, http.StatusBadRequest},
		{"op", http.MethodGet, "?state=solved", nil, http.StatusBadRequest},
		{"op", http.MethodGet, "?limit=0", nil, http.StatusBadRequest},
		{"op", http.MethodGet, "no/such/path", nil, http.StatusNotFound},
	}
	if res.StatusCode != http.StatusUnsupportedMediaType || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/taxii+json") {
		t.Errorf("text/plain body: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, e := range errs {
		status, body := a.do(e.user, e.method, e.path, e.body)
		var te struct {
			Title      string `json:"title"`
			HTTPStatus string `json:"http_status"`
		}
		if err := json.Unmarshal(body, &te); status != e.status || err != nil || te.Title == "" || te.HTTPStatus != strconv.Itoa(e.status) {
			t.Errorf("%s %s %s: %d %s, want %d", e.user, e.method, e.path, status, body, e.status)
		}
	}
}

func storeQuery(id string) store.Query { return store.Query{IDs: []string{id}, WithBody: true} }
