package drill

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const good = `name: Drill
participants:
  - name: B
    contact: identity--5b0a3e0c-8d5a-4a8e-9b43-0c1d2e3f4a5b
    url: http://127.0.0.1:1
    user: cert
    password_env: PW
    organisation: identity--6c1b4f1d-9e6b-4b9f-8c54-1d2e3f4a5b6c
    incident_account: {user: b-cert, password_env: B_PW}
steps:
  - at: 0s
    incident: {id: i1, operator: Grid Co, name: Outage, cert: B}
  - at: 1m
    request: {id: r1, to: B, kind: takedown, concerns: [i1], response_time: 1h}
  - at: 2m
    by: B
    respond: {request: r1, message: acknowledge}
  - at: 3m
    by: B
    update: {incident: i1, state: acknowledged}
operator: {user: op, password_env: OP_PW}
`

func TestParseGood(t *testing.T) {
	s, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 4 || s.Steps[1].Offset != time.Minute || s.Steps[1].Line != 14 || s.Steps[1].Request.ackWithin != 15*time.Minute {
		t.Errorf("parsed: %+v", s.Steps)
	}
}

// TestParseBad: each kind of bad content is refused with the file and the
// line at fault.
func TestParseBad(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown field", "operator: Grid Co,", "operater: Grid Co,", "line 12: field operater not found"},
		{"syntax", "name: Outage, cert: B}", "name: Outage", "good.yaml: yaml: line 11"},
		{"bad offset", "at: 1m", "at: soon", "good.yaml:13: at \"soon\""},
		{"offsets out of order", "at: 2m", "at: 30s", "good.yaml:15: at 30s comes before"},
		{"unknown participant", "to: B,", "to: C,", "good.yaml:14: request r1: unknown participant \"C\""},
		{"unknown reference", "concerns: [i1]", "concerns: [i9]", "good.yaml:14: request r1: \"i9\" is not an earlier incident"},
		{"bad response time", "response_time: 1h", "response_time: 10s", "good.yaml:14: request r1: response_time"},
		{"bad message", "message: acknowledge", "message: ignore", "good.yaml:17: respond: message \"ignore\""},
		{"two actions", "  - at: 2m\n    by: B\n", "  - at: 2m\n    incident: {id: i2, operator: X, name: Y}\n    by: B\n", "good.yaml:15: a step has exactly one"},
		{"duplicate id", "request: {id: r1,", "request: {id: i1,", "good.yaml:14: id \"i1\" used twice"},
		{"incident without cert", "name: Outage, cert: B}", "name: Outage}", "good.yaml:12: incident i1: cert \"\""},
		{"update of an unknown incident", "update: {incident: i1,", "update: {incident: i7,", "good.yaml:20: update: \"i7\" is not an earlier incident"},
		{"update with two actions", "state: acknowledged}", "state: acknowledged, report: feedback}", "good.yaml:20: update of i1: want exactly one"},
		{"update by a participant without account", "    incident_account: {user: b-cert, password_env: B_PW}\n", "", "update: by \"B\""},
		{"no operator account", "operator: {user: op, password_env: OP_PW}\n", "", "good.yaml:12: incident i1: the scenario needs an operator account"},
		{"bad contact", "contact: identity--", "contact: person--", "good.yaml:3: participant B: contact"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := strings.Replace(good, c.from, c.to, 1)
			if data == good {
				t.Fatalf("case does not change the scenario")
			}
			_, err := Parse("good.yaml", []byte(data))
			if err == nil || !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}
