package mailing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// ErrRecipientRejected is returned (wrapped in messaging.Permanent) when the SMTP server
// refuses the address for good, or when the address or the name break the contract's rule
// (events.Customer.MailAddress; the error is then also an events.ErrMalformed): retrying
// cannot deliver such a mail.
var ErrRecipientRejected = errors.New("recipient rejected")

// ErrNotSecure is returned (wrapped in messaging.Unavailable) when TLS is required and the
// session could not be made secure: the server offers no STARTTLS, or its certificate is
// not trusted or not for its name. No mail is sent then; it waits, like a mail whose
// server is down, for the server (or this service's configuration) to be fixed.
var ErrNotSecure = errors.New("smtp session not secure")

// TLS policies of SMTPConfig.TLS.
const (
	// TLSOpportunistic upgrades the session with STARTTLS when the server offers it and
	// sends in clear otherwise (local catchers such as a plain Mailpit offer none). A
	// server that offers STARTTLS must still present a certificate the sender trusts.
	TLSOpportunistic = "opportunistic"
	// TLSRequired refuses to send unless the session is upgraded with STARTTLS to a
	// server whose certificate verifies (against SMTPConfig.TLSConfig's roots) for its
	// host name. Username and password then never travel in clear.
	TLSRequired = "required"
)

// SMTPConfig configures a Sender.
type SMTPConfig struct {
	// Addr is the SMTP server's host:port.
	Addr string
	// From is the sender, "Name <address>" or a bare address. Its domain also names the
	// Message-ID of every mail.
	From string
	// Username, when set, makes the sender authenticate with Password, using the strongest
	// mechanism the server offers. Without TLS only mechanisms that never reveal the
	// password are tried, so credentials are not sent in clear.
	Username string
	Password string
	// Timeout bounds connecting and each SMTP command. Default 15 s.
	Timeout time.Duration
	// TLS is the STARTTLS policy, TLSOpportunistic (the default) or TLSRequired.
	TLS string
	// TLSConfig, when set, verifies the server's certificate with its RootCAs instead of
	// the system's trust store (a private CA). Its ServerName is set to Addr's host.
	TLSConfig *tls.Config
	// Sessions is the most SMTP sessions open at once, each kept open between mails; a
	// send finds one free or waits for one. Default 8, the default CONSUMER_CONCURRENCY,
	// so that no handler waits; fewer for a server that limits connections per client.
	Sessions int
	// SessionIdle is how long a session may wait for its next mail before it is closed.
	// Default 30 s: servers may drop idle sessions after a minute (a session the server
	// closed is noticed and replaced, at the cost of a NOOP), and an idle service holds no
	// connection for long.
	SessionIdle time.Duration
}

func (c *SMTPConfig) setDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
	if c.Sessions == 0 {
		c.Sessions = 8
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = 30 * time.Second
	}
	if c.TLS == "" {
		c.TLS = TLSOpportunistic
	}
}

// Validate reports a configuration that cannot work.
func (c SMTPConfig) Validate() error {
	if _, _, err := splitAddr(c.Addr); err != nil {
		return fmt.Errorf("smtp config: addr: %w", err)
	}
	if _, err := netmail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("smtp config: from %q: %w", c.From, err)
	}
	if c.Timeout < 0 {
		return errors.New("smtp config: timeout must be positive")
	}
	if c.Sessions < 0 {
		return errors.New("smtp config: sessions must be positive")
	}
	if c.SessionIdle < 0 {
		return errors.New("smtp config: session idle time must be positive")
	}
	if c.TLS != "" && c.TLS != TLSOpportunistic && c.TLS != TLSRequired {
		return fmt.Errorf("smtp config: tls %q: want %s or %s", c.TLS, TLSOpportunistic, TLSRequired)
	}
	return nil
}

// Sender sends mails over SMTP on a pool of sessions (SMTPConfig.Sessions), each kept open
// between mails: a mail on a session already open costs NOOP, MAIL FROM, RCPT TO and DATA,
// where a new session adds a TCP connection, the greeting, EHLO, maybe STARTTLS (a TLS
// handshake and EHLO again) and AUTH, and QUIT. Every session is dialled with the
// configuration's TLS policy and CA, so each one is secured, or refused, as the first.
// A Sender is safe for concurrent use: a session serves one send at a time.
type Sender struct {
	host     string
	opts     []gomail.Option
	sessions *sessions
	from     string
	domain   string
	logger   *slog.Logger
}

// NewSender returns a Sender for config. It does not connect: a server that is down at
// start-up only delays mails, which are retried. Close ends its sessions.
func NewSender(config SMTPConfig, logger *slog.Logger) (*Sender, error) {
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitAddr(config.Addr)
	policy := gomail.TLSOpportunistic // STARTTLS whenever the server offers it
	if config.TLS == TLSRequired {
		policy = gomail.TLSMandatory // no STARTTLS, no mail
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(config.Timeout),
		gomail.WithTLSPolicy(policy),
		// A session taken from the pool is checked with a NOOP of the Sender's own; one just
		// dialled has answered EHLO. And a mail the server accepted ends its SMTP
		// transaction (RFC 5321, 4.1.1.4), so go-mail's RSET after each mail is not needed.
		gomail.WithoutNoop(),
		gomail.WithoutRset(),
	}
	if config.TLSConfig != nil {
		// go-mail's own configuration names the host; one passed in replaces it whole.
		tlsConfig := config.TLSConfig.Clone()
		tlsConfig.ServerName = host
		opts = append(opts, gomail.WithTLSConfig(tlsConfig))
	}
	if config.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(config.Username), gomail.WithPassword(config.Password))
	}
	if _, err := gomail.NewClient(host, opts...); err != nil { // checks the options once
		return nil, fmt.Errorf("new sender: %w", err)
	}
	from, _ := netmail.ParseAddress(config.From)
	return &Sender{
		host: host, opts: opts,
		sessions: newSessions(config.Sessions, config.SessionIdle, config.Timeout),
		from:     config.From, domain: from.Address[strings.LastIndex(from.Address, "@")+1:], logger: logger,
	}, nil
}

// Close ends the sessions waiting for a mail. A Sender still sends after Close, on new
// sessions; those are closed after their idle time.
func (s *Sender) Close() { s.sessions.close() }

// Send delivers m with the Message-ID "<id@domain of From>". Sending the same id twice gives
// two mails with one Message-ID, which mail clients show as one.
//
// It sends on a session of the pool, or on a new one when none is free and fewer than
// SMTPConfig.Sessions are open; it waits for a free one otherwise. A session the server
// closed since its last mail fails its NOOP, before anything of the mail is sent, and is
// replaced by a new one: the mail goes out once, on that one. Any failure during the mail
// closes its session and is returned, as it was on a session of its own: the caller tries
// again.
//
// It returns nil once the server has accepted the mail, even if the session fails
// afterwards: failing then would make the caller send the mail again.
func (s *Sender) Send(ctx context.Context, id string, m Mail) error {
	msg, err := s.compose(id, m)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil { // a session from the pool would not notice
		return fmt.Errorf("send %s: %w", id, err)
	}
	session, err := s.sessions.take(ctx)
	if err != nil {
		// Every session busy for the attempt's whole time: the caller tries again.
		return fmt.Errorf("send %s: waiting for a free smtp session: %w", id, err)
	}
	if session == nil {
		if session, err = s.dial(ctx); err != nil {
			s.sessions.free()
			return s.failed(ctx, id, m, msg, fmt.Errorf("dial: %w", err))
		}
	}
	err = session.send(msg)
	s.sessions.give(session, err)
	return s.failed(ctx, id, m, msg, err)
}

// dial opens a session: it connects, and go-mail greets the server, secures the session as
// the TLS policy says, and authenticates.
func (s *Sender) dial(ctx context.Context) (*session, error) {
	var (
		dialer net.Dialer
		conn   net.Conn
	)
	// go-mail leaves the connection open when EHLO, STARTTLS or AUTH fail: the dial
	// function keeps it to close it then.
	mailer, err := gomail.NewClient(s.host, append(slices.Clip(s.opts),
		gomail.WithDialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			conn = c
			return c, err
		}))...)
	if err != nil {
		return nil, err
	}
	client, err := mailer.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, err
	}
	return &session{mailer: mailer, conn: client}, nil
}

// failed classifies the error of a send; nil stays nil. Every error of the session may name
// the recipient (the server's reply, go-mail's list of affected recipients): it is logged
// and may become a dead-letter reason, so its text is redacted; the classification still
// reads the error itself.
func (s *Sender) failed(ctx context.Context, id string, m Mail, msg *gomail.Msg, err error) error {
	switch {
	case err == nil:
		return nil
	case msg.IsDelivered():
		s.logger.WarnContext(ctx, "smtp session failed after the mail was accepted", "order_id", m.OrderID, "message_id", id, "error", redact(err))
		return nil
	case isNotSecure(err):
		return messaging.Unavailable("smtp", fmt.Errorf("send %s: %w: %w", id, ErrNotSecure, redact(err)))
	case isPermanentRecipientError(err):
		return messaging.Permanent(fmt.Errorf("send %s: %w: %w", id, ErrRecipientRejected, redact(err)))
	case isServerUnavailable(err):
		// Not this mail's fault: the consumer holds it and waits for the server.
		return messaging.Unavailable("smtp", fmt.Errorf("send %s: %w", id, redact(err)))
	default:
		return fmt.Errorf("send %s: %w", id, redact(err))
	}
}

// compose builds the MIME message: plain text, Date and Message-ID set, no User-Agent.
func (s *Sender) compose(id string, m Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.from); err != nil {
		return nil, fmt.Errorf("compose %s: from: %w", id, err)
	}
	// The recipient comes from the contract's rule, the one POST /orders checked: go-mail's
	// AddToFormat pastes the name between quotes unescaped, so a name with a quote or a
	// backslash made a header that does not parse, and the mail was refused.
	to, err := events.Customer{Name: m.Name, Email: m.To}.MailAddress()
	if err != nil {
		// The rule's error says what is wrong with the address without repeating it.
		return nil, messaging.Permanent(fmt.Errorf("compose %s: to: %w: %w", id, ErrRecipientRejected, err))
	}
	msg.SetAddrHeaderFromMailAddress(gomail.HeaderTo, to)
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(id + "@" + s.domain)
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	return msg, nil
}

// isPermanentRecipientError reports a 5xx answer to RCPT TO: the address does not exist.
// Other 5xx answers (to MAIL FROM or DATA) usually mean a misconfigured sender, which an
// operator can fix and then replay from the dead-letter queue, so they are retried first.
//
// It takes an SMTP reply of 500 or more to say so: go-mail reports a connection that broke
// during RCPT TO (the server stopped, EOF, a broken pipe) as the same ErrSMTPRcptTo, not
// temporary, with no reply code (0), and that mail must wait for the server, not be
// dead-lettered (the chaos scenario smtp-down-long lost a mail that way).
func isPermanentRecipientError(err error) bool {
	var sendErr *gomail.SendError
	return errors.As(err, &sendErr) && sendErr.Reason == gomail.ErrSMTPRcptTo && !sendErr.IsTemp() &&
		sendErr.ErrorCode() >= 500
}

// isNotSecure reports a session that TLS refused: no STARTTLS where it is mandatory (go-mail
// says so in text only: its tests pin the words), or a handshake that failed, mostly on
// the server's certificate.
func isNotSecure(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
	)
	return strings.Contains(err.Error(), "does not support STARTTLS") ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &hostname)
}

// isServerUnavailable reports a failure that says nothing about the mail: the server could
// not be reached or the connection broke (refused, timed out, reset: no SMTP reply at all),
// or it answered with a transient 4xx reply (421 shutting down, 450/451 try later).
// Permanent 5xx replies are not: they are this mail's or this sender's problem.
func isServerUnavailable(err error) bool {
	var sendErr *gomail.SendError
	if errors.As(err, &sendErr) {
		switch sendErr.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return false // the message itself, before any server was involved
		}
		// go-mail keeps the cause of a SendError to itself; ErrorCode is 0 when the
		// failure was not an SMTP reply, i.e. the connection's.
		return sendErr.IsTemp() || sendErr.ErrorCode() == 0
	}
	var reply *textproto.Error // the greeting or EHLO, before any SendError
	if errors.As(err, &reply) {
		return reply.Code >= 400 && reply.Code < 500
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

func splitAddr(addr string) (host string, port int, err error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", p)
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	return host, port, nil
}
