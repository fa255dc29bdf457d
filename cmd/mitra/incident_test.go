package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesBadRegimeFile: a regime file with bad content stops the
// server before it listens, with the file, line and field at fault.
func TestServeRefusesBadRegimeFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "regimes.yaml")
	doc := "regimes:\n  - name: ncsc-xx\n    stages:\n      - name: notification\n        party: operator\n        within: soon\n        after: awareness\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := map[string]string{"MITRA_ADMIN_PASSWORD": "admin-password-1"}
	err := run(t.Context(), []string{"serve", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--incident-regimes", file},
		nil, &stdout, &stderr, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), file+":6: regimes[0].stages[0].within: \"soon\" is not a duration") {
		t.Fatalf("serve = %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "listening") {
		t.Fatalf("the server listened with a bad regime file:\n%s", stderr.String())
	}
}

// TestServeNeedsWebhookSecret: webhooks are never sent unsigned.
func TestServeNeedsWebhookSecret(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"MITRA_ADMIN_PASSWORD": "admin-password-1", "MITRA_NOTIFY_WEBHOOKS": "https://hooks.example/x"}
	err := run(t.Context(), []string{"serve", "--data", dir, "--addr", "127.0.0.1:0"}, nil, &stdout, &stderr, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "--notify-webhook-secret") {
		t.Fatalf("serve = %v", err)
	}
}
