package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/mitra-cert/mitra/internal/store"
)

// Mailer sends deliveries as plain-text e-mail through an SMTP server.
type Mailer struct {
	Addr string // host:port
	From string
	// User and Password, when set, authenticate with PLAIN (net/smtp
	// refuses it without TLS except to localhost).
	User, Password string
	// TLS: "starttls" (default: when the server offers it), "required"
	// (refuse to send without STARTTLS) or "implicit" (TLS from the first
	// byte, port 465).
	TLS     string
	Timeout time.Duration // default 30s
	// TLSConfig, when set, is used for the TLS connection (tests, private CAs).
	TLSConfig *tls.Config
}

// Send implements Sender.
func (m *Mailer) Send(ctx context.Context, d store.Notification, at time.Time) error {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return &Permanent{fmt.Errorf("smtp address %q: %w", m.Addr, err)}
	}
	tcfg := m.TLSConfig
	if tcfg == nil {
		tcfg = &tls.Config{ServerName: host}
	}
	dl := net.Dialer{Timeout: timeout}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	if m.TLS == "implicit" {
		conn, err = (&tls.Dialer{NetDialer: &dl, Config: tcfg}).DialContext(dctx, "tcp", m.Addr)
	} else {
		conn, err = dl.DialContext(dctx, "tcp", m.Addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.Addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", m.Addr, err)
	}
	defer c.Close()
	if m.TLS != "implicit" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tcfg); err != nil {
				return fmt.Errorf("smtp %s: starttls: %w", m.Addr, err)
			}
		} else if m.TLS == "required" {
			return fmt.Errorf("smtp %s: the server does not offer STARTTLS", m.Addr)
		}
	}
	if m.User != "" {
		if err := c.Auth(smtp.PlainAuth("", m.User, m.Password, host)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", m.Addr, err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return smtpErr(m.Addr, "MAIL FROM", err)
	}
	if err := c.Rcpt(d.Target); err != nil {
		return smtpErr(m.Addr, "RCPT TO "+d.Target, err)
	}
	wc, err := c.Data()
	if err != nil {
		return smtpErr(m.Addr, "DATA", err)
	}
	if _, err := wc.Write(m.message(d, at)); err != nil {
		return fmt.Errorf("smtp %s: write: %w", m.Addr, err)
	}
	if err := wc.Close(); err != nil {
		return smtpErr(m.Addr, "end of DATA", err)
	}
	// The server took the message: a failed QUIT must not send it again.
	_ = c.Quit()
	return nil
}

// smtpErr makes a 5xx reply permanent, as RFC 5321 §4.2.1 means it.
func smtpErr(addr, step string, err error) error {
	var te *textproto.Error
	permanent := errors.As(err, &te) && te.Code >= 500
	err = fmt.Errorf("smtp %s: %s: %w", addr, step, err)
	if permanent {
		return &Permanent{err}
	}
	return err
}

// message renders d as an RFC 5322 message: the subject, then the JSON
// document indented. The Message-ID is the delivery id, so a receiver can
// drop the copy a crash made it send twice.
func (m *Mailer) message(d store.Notification, at time.Time) []byte {
	var b bytes.Buffer
	subject := d.Subject
	if subject == "" {
		subject = "Mitra: " + d.Event
	}
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", m.From)
	hdr("To", d.Target)
	hdr("Subject", mime.QEncoding.Encode("utf-8", subject))
	hdr("Date", at.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+strings.TrimPrefix(d.ID, "delivery--")+"@mitra>")
	hdr(HeaderDelivery, d.ID)
	hdr(HeaderEvent, d.Event)
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `text/plain; charset="utf-8"`)
	hdr("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(subject + "\r\n\r\n")
	var pretty bytes.Buffer
	if json.Indent(&pretty, d.Body, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(d.Body)
	}
	for _, line := range strings.Split(pretty.String(), "\n") {
		b.WriteString(line + "\r\n")
	}
	return b.Bytes()
}
