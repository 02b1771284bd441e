package main

import (
	"errors"
	"io"
	"net"
	netmail "net/mail"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is a real SMTP server that keeps what it receives: the mail server of the
// component tests.
type smtpSink struct {
	mu     sync.Mutex
	mails  []sunkMail
	reject map[string]bool // recipients refused for good at RCPT TO
	// hangUps is how many sessions the sink cuts off at RCPT TO, as a server that stops
	// in the middle of a session: no reply, the connection closed.
	hangUps int
	// sessions is how many connections the sink accepted.
	sessions atomic.Int64
	server   *smtp.Server
	ln       net.Listener
	done     chan struct{}
}

// sunkMail is one mail as the sink received it.
type sunkMail struct {
	From   string
	To     []string
	Header netmail.Header
	Body   string
}

// startSMTPSink listens on addr ("127.0.0.1:0" for any port) until stopped or t ends.
func startSMTPSink(t *testing.T, addr string) (*smtpSink, string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("smtp sink listen: %v", err)
	}
	s := &smtpSink{done: make(chan struct{})}
	s.ln = countingListener{Listener: l, n: &s.sessions}
	s.server = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: s, conn: c}, nil
	}))
	s.server.Domain = "sink.test"
	s.server.ReadTimeout = 10 * time.Second
	s.server.WriteTimeout = 10 * time.Second
	go func() {
		defer close(s.done)
		_ = s.server.Serve(s.ln)
	}()
	t.Cleanup(s.stop)
	return s, l.Addr().String()
}

// stop closes the listener and every session; further connections are refused.
func (s *smtpSink) stop() {
	_ = s.server.Close()
	_ = s.ln.Close() // Close misses a listener that Serve has not registered yet
	<-s.done
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// rejectRecipient makes the sink refuse addr at RCPT TO with a permanent 550 that names
// the address, as real mail servers do.
func (s *smtpSink) rejectRecipient(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject == nil {
		s.reject = map[string]bool{}
	}
	s.reject[addr] = true
}

// hangUpAtRcpt makes the sink close the next n sessions' connections at RCPT TO, without
// a reply.
func (s *smtpSink) hangUpAtRcpt(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangUps = n
}

// received returns the mails received so far.
func (s *smtpSink) received() []sunkMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunkMail(nil), s.mails...)
}

type sinkSession struct {
	sink *smtpSink
	conn *smtp.Conn
	from string
	to   []string
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.sink.mu.Lock()
	rejected := s.sink.reject[to]
	hangUp := s.sink.hangUps > 0
	if hangUp {
		s.sink.hangUps--
	}
	s.sink.mu.Unlock()
	if hangUp {
		_ = s.conn.Close()
		return errors.New("hung up")
	}
	if rejected {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: user unknown"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	msg, err := netmail.ReadMessage(r)
	if err != nil {
		return errors.Join(err, drain(r))
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	s.sink.mails = append(s.sink.mails, sunkMail{From: s.from, To: s.to, Header: msg.Header, Body: string(body)})
	return nil
}

func (s *sinkSession) Reset() { s.from, s.to = "", nil }

func (s *sinkSession) Logout() error { return nil }

func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
