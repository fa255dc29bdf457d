// Command mitra is the Mitra server and its administration tools: a STIX 2.1
// knowledge store served over TAXII 2.1.
//
// This package only wires flags to the packages under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// errSilent exits with status 1 without printing anything more: the
// command already said why (for example validation problems).
var errSilent = &exitError{code: 1}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil {
				fmt.Fprintln(os.Stderr, "mitra:", ee.err)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "mitra:", err)
		os.Exit(1)
	}
}

// env is the process environment, injected so that tests run the CLI in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// run parses args and runs the chosen command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	var cli CLI
	exitCode := -1
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	parser, err := kong.New(&cli,
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(e),
		kong.Name("mitra"),
		kong.Description("Mitra: share, detect and coordinate on cyber threats with STIX 2.1 and TAXII 2.1."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code }),
		kong.UsageOnError(),
		kong.Vars{"version": version},
		kong.Resolvers(envResolver(getenv)),
	)
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if exitCode >= 0 { // --help
		if exitCode == 0 {
			return nil
		}
		return &exitError{code: exitCode}
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	return kctx.Run()
}

// envResolver reads flags from MITRA_* variables through getenv (kong's own
// env support reads os.Getenv, which tests cannot inject).
func envResolver(getenv func(string) string) kong.Resolver {
	return kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
		for _, name := range flag.Envs {
			if v := getenv(name); v != "" {
				return v, nil
			}
		}
		return nil, nil
	})
}

const version = "0.1.0"

// CLI is the command tree.
type CLI struct {
	Serve        ServeCmd        `cmd:"" help:"Run the TAXII 2.1 server."`
	User         UserCmd         `cmd:"" help:"Manage users."`
	Collection   CollectionCmd   `cmd:"" help:"Manage collections."`
	Token        TokenCmd        `cmd:"" help:"Manage API tokens."`
	Org          OrgCmd          `cmd:"" help:"Manage organisations."`
	Group        GroupCmd        `cmd:"" help:"Manage sharing groups of organisations."`
	Audit        AuditCmd        `cmd:"" help:"List the audit log, newest first."`
	Prune        PruneCmd        `cmd:"" help:"Remove old status resources and audit records now (the server does it hourly)."`
	Validate     ValidateCmd     `cmd:"" help:"Validate STIX 2.1 objects in files (bundles, envelopes, objects, JSON lines; - for stdin)."`
	Pattern      PatternCmd      `cmd:"" help:"Check STIX patterns and match them against observed data."`
	Version      VersionCmd      `cmd:"" help:"Print the version."`
	Migrate      MigrateCmd      `cmd:"" help:"Apply pending database schema migrations, and nothing else."`
	MigrateStore MigrateStoreCmd `cmd:"" name:"migrate-store" help:"Copy a whole store to another backend (e.g. SQLite to PostgreSQL), verifying row counts."`
	TAXII        TAXIICmd        `cmd:"" name:"taxii" help:"Pull from and push to remote TAXII 2.1 servers."`
	Bench        BenchCmd        `cmd:"" help:"Measure ingest, reads, matching and detection on this machine and print a table."`
	Peer         PeerCmd         `cmd:"" help:"Manage federation peers and run their links."`
	Detect       DetectCmd       `cmd:"" help:"Match telemetry (Zeek, Suricata, STIX, JSON; files, directories, stdin, NATS) against the indicators and record sightings."`
	Hash         HashCmd         `cmd:"" help:"Print content hashes of files: MD5, SHA-256, TLSH, and PDQ with its quality for images (JPEG, PNG, GIF, WebP, BMP)."`
	Incident     IncidentCmd     `cmd:"" help:"Report incidents to a CERT and follow their reporting clocks and lifecycle."`
	Notify       NotifyCmd       `cmd:"" help:"Show the notification queue (webhooks, e-mail)."`
	Search       SearchCmd       `cmd:"" help:"Search a server for objects by text, type, TLP, collection, organisation and time."`
	Lookup       LookupCmd       `cmd:"" help:"Ask a server whether IPs, domains, URLs or hashes are known (an IP in an indicator's range counts)."`
	Import       ImportCmd       `cmd:"" help:"Import STIX 2.1 and 2.0 bundles, MISP events and feeds, CSV and text lists into a collection, through the same checks as a TAXII POST."`
	Feed         FeedCmd         `cmd:"" help:"Manage scheduled feeds, warning lists and inactive flags."`
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run implements the command.
func (VersionCmd) Run(e *env) error {
	fmt.Fprintln(e.stdout, "mitra", version)
	return nil
}
