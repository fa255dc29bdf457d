package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mitra-cert/mitra/internal/hashmatch"
)

// HashServerFlags name the server of the hash API and the credentials.
type HashServerFlags struct {
	URL      string `name:"url" default:"http://127.0.0.1:8080" env:"MITRA_URL" help:"Address of the Mitra server."`
	User     string `env:"MITRA_USER" help:"HTTP Basic user."`
	Password string `env:"MITRA_PASSWORD" help:"HTTP Basic password."`
	Token    string `env:"MITRA_TOKEN" help:"API token (Bearer)."`
}

func (f HashServerFlags) client() (*hashmatch.Client, error) {
	cl, err := hashmatch.NewClient(f.URL)
	if err != nil {
		return nil, err
	}
	cl.User, cl.Password, cl.Token = f.User, f.Password, f.Token
	return cl, nil
}

// HashShareCmd shares the hashes of files.
type HashShareCmd struct {
	HashServerFlags `embed:""`
	Files           []string `arg:"" help:"Files whose hashes to share; - for standard input."`
	Collection      string   `required:"" help:"Collection id or alias."`
	Label           []string `required:"" sep:"," help:"Labels from the vocabulary (propaganda, recruitment, instruction, attack-footage, threat, glorification, manifesto, violent-extremist, terrorist-content)."`
	TLP             string   `name:"tlp" help:"TLP level: clear, green, amber, amber+strict, red (default: the collection's)."`
	Recipients      []string `sep:"," help:"Organisations (identity ids) an AMBER+STRICT or RED hash is released to."`
}

// Run implements the command: one file observable and indicator per file,
// through the server's TAXII ingest. Files are hashed here; only hashes go.
func (c *HashShareCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	failed := 0
	for _, name := range c.Files {
		fh, err := hashFile(ctx, e, name)
		if err != nil {
			fmt.Fprintf(e.stderr, "mitra: hash %s: %v\n", name, err)
			failed++
			continue
		}
		res, err := cl.Share(ctx, hashmatch.ShareRequest{Collection: c.Collection, Hashes: hashmatch.FromFile(fh),
			Labels: c.Label, TLP: c.TLP, Recipients: c.Recipients})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(e.stderr, "mitra: share %s: %v\n", name, err)
			failed++
			continue
		}
		fmt.Fprintf(e.stdout, "%s\t%s\n", name, res.Indicator)
	}
	if failed > 0 {
		return errSilent
	}
	return nil
}

// HashMatchCmd matches files or hashes against the shared hashes.
type HashMatchCmd struct {
	HashServerFlags `embed:""`
	Files           []string `arg:"" optional:"" help:"Files to match (hashed here; only hashes are sent); - for standard input."`
	PDQ             string   `name:"pdq" help:"Match this PDQ hash (64 hex digits)."`
	TLSH            string   `name:"tlsh" help:"Match this TLSH digest."`
	MD5             string   `name:"md5" help:"Match this MD5."`
	SHA256          string   `name:"sha256" help:"Match this SHA-256."`
	PDQThreshold    int      `name:"pdq-threshold" help:"Largest PDQ Hamming distance (server default 31)."`
	MinQuality      int      `name:"min-quality" help:"Smallest PDQ quality (server default 50)."`
	TLSHDistance    int      `name:"tlsh-distance" help:"Largest TLSH distance (server default 40)."`
	JSON            bool     `help:"Print one JSON object per query."`
}

// Run implements the command.
func (c *HashMatchCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	type query struct {
		name   string
		hashes hashmatch.Hashes
	}
	var qs []query
	if c.PDQ != "" || c.TLSH != "" || c.MD5 != "" || c.SHA256 != "" {
		qs = append(qs, query{"(given hashes)", hashmatch.Hashes{PDQ: c.PDQ, TLSH: c.TLSH, MD5: c.MD5, SHA256: c.SHA256}})
	}
	failed := 0
	for _, name := range c.Files {
		fh, err := hashFile(ctx, e, name)
		if err != nil {
			fmt.Fprintf(e.stderr, "mitra: hash %s: %v\n", name, err)
			failed++
			continue
		}
		qs = append(qs, query{name, hashmatch.FromFile(fh)})
	}
	if len(qs) == 0 && failed == 0 {
		return errors.New("give files or --pdq, --tlsh, --md5, --sha256")
	}
	enc := json.NewEncoder(e.stdout)
	for _, q := range qs {
		res, err := cl.Match(ctx, hashmatch.MatchRequest{Hashes: q.hashes, PDQThreshold: c.PDQThreshold, MinQuality: c.MinQuality, TLSHDistance: c.TLSHDistance})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(e.stderr, "mitra: match %s: %v\n", q.name, err)
			failed++
			continue
		}
		if c.JSON {
			if err := enc.Encode(struct {
				File string `json:"file"`
				*hashmatch.Result
			}{q.name, res}); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			continue
		}
		fmt.Fprintf(e.stdout, "%s: %d match(es)\n", q.name, len(res.Matches))
		for _, n := range res.Notes {
			fmt.Fprintf(e.stdout, "  note: %s\n", n)
		}
		for _, m := range res.Matches {
			fmt.Fprintf(e.stdout, "  %s  %s distance %d  labels %s  by %s  verdicts +%d/-%d\n", m.Indicator, m.Algorithm, m.Distance,
				strings.Join(m.Labels, ","), m.Contributor, m.Verdicts.TruePositive, m.Verdicts.FalsePositive)
		}
	}
	if failed > 0 {
		return errSilent
	}
	return nil
}

// HashVerdictCmd records a verdict on a match.
type HashVerdictCmd struct {
	HashServerFlags `embed:""`
	Indicator       string   `arg:"" help:"The indicator id of the match."`
	TruePositive    bool     `name:"true-positive" xor:"verdict" required:"" help:"The match is right."`
	FalsePositive   bool     `name:"false-positive" xor:"verdict" required:"" help:"The match is wrong."`
	Collection      string   `required:"" help:"Collection to store the opinion in."`
	Explanation     string   `help:"Why."`
	TLP             string   `name:"tlp" help:"TLP level of the opinion (default: the collection's)."`
	Recipients      []string `sep:"," help:"Organisations (identity ids) an AMBER+STRICT or RED opinion is released to (name the contributor so the verdict reaches it)."`
}

// Run implements the command.
func (c *HashVerdictCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	v := "false-positive"
	if c.TruePositive {
		v = "true-positive"
	}
	if _, err := cl.Verdict(ctx, hashmatch.VerdictRequest{Collection: c.Collection, Indicator: c.Indicator, Verdict: v,
		Explanation: c.Explanation, TLP: c.TLP, Recipients: c.Recipients}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Recorded %s on %s.\n", v, c.Indicator)
	return nil
}
