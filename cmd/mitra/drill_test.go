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
