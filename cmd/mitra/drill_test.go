package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDrillBadScenario: mitra drill run refuses a scenario with bad
// content before contacting any server, naming the file and the line.
func TestDrillBadScenario(t *testing.T) {
	file := filepath.Join(t.TempDir(), "drill.yaml")
	bad := "name: d\nparticipants: []\nsteps:\n  - at: 0s\n    indicator: {id: x, name: y, pattern: \"[ipv4-addr:value = '192.0.2.1']\"}\n  - at: 1m\n    request: {id: r, to: Nobody, kind: analysis, concerns: [x], response_time: 1h}\n"
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := mitra(t, nil, "", "drill", "run", file, "--url", "http://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "drill.yaml:7: request r: unknown participant \"Nobody\"") {
		t.Errorf("bad scenario: %v", err)
	}
}

// TestDrillIncidentsNotFaster: a scenario with incidents is not played
// faster than the servers' clocks, which keep the incidents' deadlines.
func TestDrillIncidentsNotFaster(t *testing.T) {
	file := filepath.Join(t.TempDir(), "drill.yaml")
	sc := "name: d\noperator: {user: op, password_env: OP}\nparticipants:\n  - {name: B, contact: identity--5b0a3e0c-8d5a-4a8e-9b43-0c1d2e3f4a5b, organisation: identity--6c1b4f1d-9e6b-4b9f-8c54-1d2e3f4a5b6c}\n" +
		"steps:\n  - at: 0s\n    incident: {id: i1, operator: Grid, name: Outage, cert: B}\n"
	if err := os.WriteFile(file, []byte(sc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := mitra(t, nil, "", "drill", "run", file, "--url", "http://127.0.0.1:1", "--speed", "60")
	if err == nil || !strings.Contains(err.Error(), "a scenario with incidents plays in real time") {
		t.Errorf("--speed 60 with incidents: %v", err)
	}
}
