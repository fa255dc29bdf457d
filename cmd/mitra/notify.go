package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/mitra-cert/mitra/internal/notify"
	"github.com/mitra-cert/mitra/internal/store"
)

// NotifyCmd groups the notification commands.
type NotifyCmd struct {
	List NotifyListCmd `cmd:"" help:"List queued, delivered and failed notifications (webhooks, e-mail), newest first."`
}

// NotifyListCmd lists the notification queue from the store.
type NotifyListCmd struct {
	StoreFlags `embed:""`
	State      string `help:"Only pending, delivered or failed notifications." enum:",pending,delivered,failed" default:""`
	Limit      int    `default:"100" help:"At most this many."`
	JSON       bool   `help:"Print JSON lines."`
}

// Run implements the command.
func (c *NotifyListCmd) Run(ctx context.Context, e *env) error {
	return withStore(ctx, c.StoreFlags, func(st store.Store) error {
		ns, ok := st.(notify.Store)
		if !ok {
			return errors.New("this store keeps no notifications")
		}
		ds, err := ns.ListNotifications(ctx, store.NotificationFilter{State: c.State, Limit: c.Limit})
		if err != nil {
			return err
		}
		if c.JSON {
			enc := json.NewEncoder(e.stdout)
			for _, d := range ds {
				if err := enc.Encode(struct {
					store.Notification
					Body json.RawMessage `json:"body"`
				}{d, d.Body}); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tCHANNEL\tTARGET\tEVENT\tSTATE\tATTEMPTS\tNEXT/DELIVERED\tLAST ERROR")
		for _, d := range ds {
			when := d.NextAttempt.Format(time.RFC3339)
			if d.State == store.NotificationDelivered {
				when = d.Delivered.Format(time.RFC3339)
			} else if d.State == store.NotificationFailed {
				when = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Created.Format(time.RFC3339), d.Channel, d.Target, d.Event, d.State, d.Attempts, when, d.LastError)
		}
		return tw.Flush()
	})
}
