package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/assist"
)

// PocCmd groups the directory commands.
type PocCmd struct {
	Add    PocAddCmd    `cmd:"" help:"Add (or, with --id, update) a point of contact in the directory."`
	List   PocListCmd   `cmd:"" help:"List the points of contact you may see."`
	Ping   PocPingCmd   `cmd:"" help:"Send a reachability challenge to each contact over its channel (administrators)."`
	Answer PocAnswerCmd `cmd:"" help:"Answer a reachability challenge through the API."`
	Report PocReportCmd `cmd:"" help:"Reachability per contact: answered within 2 hours, within 24 hours, or not at all."`
}

// PocAddCmd adds a contact.
type PocAddCmd struct {
	AssistServerFlags `embed:""`
	Name              string   `arg:"" help:"Name of the contact (a person or a desk)."`
	ID                string   `help:"Identity id (to update an entry)."`
	Country           string   `required:"" help:"ISO 3166-1 alpha-2 country code."`
	Organisation      string   `help:"The organisation's identity id (the CERT the contact speaks for)."`
	OrganisationName  string   `name:"organisation-name" help:"The organisation's name."`
	Kind              string   `required:"" enum:"diplomatic,technical" help:"diplomatic or technical."`
	Roles             []string `sep:"," help:"Roles."`
	TAXII             string   `name:"taxii" help:"TAXII channel: PEER/COLLECTION (a federation peer of this server and the collection there that takes assistance requests)."`
	Email             string   `help:"E-mail channel."`
	Webhook           string   `help:"Webhook channel."`
	Phone             string   `help:"Phone channel."`
	TimeZone          string   `name:"time-zone" help:"IANA time zone of the working hours."`
	Days              []string `sep:"," help:"Working days (mon..sun)."`
	Hours             string   `help:"Working hours HH:MM-HH:MM."`
	Order             int      `help:"Escalation order within the organisation (lower is asked first)."`
	TLP               string   `name:"tlp" help:"TLP level of the entry (default: the directory collection's)."`
}

// Run implements the command.
func (c *PocAddCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ct := assist.Contact{ID: c.ID, Name: c.Name, Country: c.Country, Organisation: c.Organisation, OrganisationName: c.OrganisationName,
		Kind: c.Kind, Roles: c.Roles, EscalationOrder: c.Order, TLP: c.TLP, Hours: assist.WorkingHours{TimeZone: c.TimeZone, Days: c.Days}}
	if c.Hours != "" {
		from, to, ok := strings.Cut(c.Hours, "-")
		if !ok {
			return fmt.Errorf("--hours %q: want HH:MM-HH:MM", c.Hours)
		}
		ct.Hours.From, ct.Hours.To = from, to
	}
	if c.TAXII != "" {
		peer, col, ok := strings.Cut(c.TAXII, "/")
		if !ok {
			return fmt.Errorf("--taxii %q: want PEER/COLLECTION", c.TAXII)
		}
		ct.Channels = append(ct.Channels, assist.Channel{Type: assist.ChannelTAXII, Peer: peer, Collection: col})
	}
	for typ, addr := range map[string]string{assist.ChannelEmail: c.Email, assist.ChannelWebhook: c.Webhook, assist.ChannelPhone: c.Phone} {
		if addr != "" {
			ct.Channels = append(ct.Channels, assist.Channel{Type: typ, Address: addr})
		}
	}
	got, err := cl.AddContact(ctx, ct)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, got)
	}
	fmt.Fprintln(e.stdout, got.ID)
	return nil
}

// PocListCmd lists contacts.
type PocListCmd struct {
	AssistServerFlags `embed:""`
}

// Run implements the command.
func (c *PocListCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	l, err := cl.Contacts(ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, l)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCOUNTRY\tORGANISATION\tKIND\tORDER\tNAME\tCHANNELS")
	for _, ct := range l {
		var chs []string
		for _, ch := range ct.Channels {
			chs = append(chs, ch.Type)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", ct.ID, ct.Country, ct.OrganisationName, ct.Kind, ct.EscalationOrder, ct.Name, strings.Join(chs, ","))
	}
	return tw.Flush()
}

// PocPingCmd sends challenges.
type PocPingCmd struct {
	AssistServerFlags `embed:""`
	Contacts          []string `arg:"" optional:"" help:"Contacts to test (default: every contact you may see)."`
}

// Run implements the command.
func (c *PocPingCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	chs, err := cl.Ping(ctx, c.Contacts)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, chs)
	}
	for _, ch := range chs {
		state := "sent over " + ch.Channel
		if ch.SendError != "" {
			state = "not sent (" + ch.SendError + ")"
		}
		fmt.Fprintf(e.stdout, "%s\t%s\t%s\n", ch.ID, ch.Contact, state)
	}
	return nil
}

// PocAnswerCmd answers a challenge.
type PocAnswerCmd struct {
	AssistServerFlags `embed:""`
	ID                string `arg:"" help:"Challenge id."`
}

// Run implements the command.
func (c *PocAnswerCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ch, err := cl.Answer(ctx, c.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "answered %s at %s\n", ch.ID, ch.Answered.Format(time.RFC3339))
	return nil
}

// PocReportCmd prints the reachability report.
type PocReportCmd struct {
	AssistServerFlags `embed:""`
	Since             string `help:"Only challenges sent at or after this time (RFC 3339)."`
}

// Run implements the command.
func (c *PocReportCmd) Run(ctx context.Context, e *env) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var since time.Time
	if c.Since != "" {
		if since, err = time.Parse(time.RFC3339, c.Since); err != nil {
			return fmt.Errorf("--since: %w", err)
		}
	}
	rep, err := cl.Report(ctx, since)
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, rep)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTACT\tCOUNTRY\tNAME\tTESTS\t<2H\t<24H\tUNANSWERED\tPENDING\tLAST")
	for _, r := range rep {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Contact, r.Country, r.Name, r.Challenges, r.Within2h, r.Within24h, r.Unanswered, r.Pending, r.Last)
	}
	return tw.Flush()
}
