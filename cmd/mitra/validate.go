package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mitra-cert/mitra/internal/stix"
)

// ValidateCmd checks files of STIX objects.
type ValidateCmd struct {
	Files []string `arg:"" help:"Files to check; - for standard input."`
}

// Run implements the command: one line per problem on standard output, a
// summary on standard error, exit status 1 when anything is invalid.
func (c *ValidateCmd) Run(e *env) error {
	v := newValidator()
	var objects, invalid int
	for _, name := range c.Files {
		var data []byte
		var err error
		if name == "-" {
			data, err = io.ReadAll(e.stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		raws, err := stix.SplitInput(data)
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: %v\n", name, err)
			invalid++
			continue
		}
		for _, raw := range raws {
			objects++
			ps := v.Validate(raw)
			if len(ps) > 0 {
				invalid++
			}
			for _, p := range ps {
				fmt.Fprintf(e.stdout, "%s: %s\n", name, p)
			}
		}
	}
	fmt.Fprintf(e.stderr, "%d objects checked, %d invalid\n", objects, invalid)
	if invalid > 0 {
		return errSilent
	}
	return nil
}
