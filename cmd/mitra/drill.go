package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/mitra-cert/mitra/internal/drill"
	"github.com/mitra-cert/mitra/internal/taxiiclient"
)

// DrillCmd groups the drill commands.
type DrillCmd struct {
	Run DrillRunCmd `cmd:"" help:"Play a scenario file (YAML) against this server and the participating peers, then print a report per participant."`
}

// DrillRunCmd plays a scenario.
type DrillRunCmd struct {
	AssistServerFlags `embed:""`
	Scenario          string  `arg:"" type:"existingfile" help:"Scenario file (YAML)."`
	Collection        string  `default:"drill" help:"The organiser's drill collection (id or alias): incidents and indicators are published there."`
	Speed             float64 `default:"1" help:"Play this many times faster than real time."`
	Report            string  `help:"Also write the report as JSON to this file."`
	// ClockFile, for tests and table-top replays: the drill time is kept in
	// this file (read by the servers started with --assist-clock-file) and
	// moved step by step instead of waiting.
	ClockFile string `name:"clock-file" hidden:""`
}

// Run implements the command.
func (c *DrillRunCmd) Run(ctx context.Context, e *env) error {
	data, err := os.ReadFile(c.Scenario)
	if err != nil {
		return err
	}
	sc, err := drill.Parse(c.Scenario, data)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	cl.Prefix, cl.PocPrefix = drill.Prefix, drill.Prefix
	tc, err := taxiiclient.NewClient(cl.BaseURL+"/api/", c.Collection)
	if err != nil {
		return err
	}
	tc.User, tc.Password, tc.Token = c.User, c.Password, c.Token
	if c.Speed != 1 && c.ClockFile == "" && sc.HasIncidents() {
		// The incident clocks are the servers' own: a drill played faster
		// than them would report incidents from their future.
		return fmt.Errorf("--speed %g: a scenario with incidents plays in real time (the servers keep the incident clocks)", c.Speed)
	}
	var clock drill.Clock = &drill.RealClock{Speed: c.Speed}
	if c.ClockFile != "" {
		clock = drill.FileClock{Path: c.ClockFile}
	}
	r := &drill.Runner{Scenario: sc, Clock: clock, Assist: cl, TAXII: tc, DrillPrefix: drill.Prefix, Getenv: e.getenv, Progress: e.stderr,
		Collection: c.Collection}
	rep, err := r.Run(ctx)
	if err != nil {
		return err
	}
	if c.Report != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.Report, b, 0o600); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if c.JSON {
		return printJSON(e.stdout, rep)
	}
	rep.Print(e.stdout)
	return nil
}
