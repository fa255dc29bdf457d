package main

import (
	"context"
	"fmt"

	"github.com/mitra-cert/mitra/internal/pattern"
)

// PatternCmd groups the STIX Patterning commands.
type PatternCmd struct {
	Check PatternCheckCmd `cmd:"" help:"Check a STIX pattern: prints 'valid' or the error with its position."`
	Match PatternMatchCmd `cmd:"" help:"Match patterns against observed data read as JSON lines."`
}

// PatternCheckCmd checks one pattern.
type PatternCheckCmd struct {
	Pattern string `arg:"" help:"The pattern, e.g. \"[ipv4-addr:value = '198.51.100.1']\"."`
}

// Run implements the command; exit status 1 when the pattern is invalid.
func (c *PatternCheckCmd) Run(e *env) error {
	if err := pattern.Check(c.Pattern); err != nil {
		fmt.Fprintln(e.stdout, err)
		return errSilent
	}
	fmt.Fprintln(e.stdout, "valid")
	return nil
}

// PatternMatchCmd matches patterns against observations.
type PatternMatchCmd struct {
	JSONL bool `name:"jsonl" required:"" help:"Read {\"pattern\": ..., \"observed\": [...]} JSON lines on standard input; write one result line each."`
}

// Run implements the command.
func (c *PatternMatchCmd) Run(ctx context.Context, e *env) error {
	return pattern.MatchJSONL(ctx, e.stdin, e.stdout)
}
