package mailing

import (
	"context"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// session is one open SMTP session: connected, greeted (EHLO), upgraded with STARTTLS and
// authenticated as the Sender's configuration says, ready for the next mail.
type session struct {
	// mailer is the go-mail Client that dialled the session; it sends on it with the
	// Sender's options.
	mailer *gomail.Client
	conn   *smtp.Client
	// idle closes the session when it waits unused for longer than the pool's idle time.
	// Stop decides who owns a waiting session: the sender that stops the timer, or the
	// timer that fired first.
	idle *time.Timer
}

// send sends msg over the session.
func (s *session) send(msg *gomail.Msg) error {
	return s.mailer.SendWithSMTPClient(s.conn, msg)
}

// alive reports whether the server still answers on the session (NOOP), as it may have
// closed it since the last mail (a restart, its own idle timeout). A session that does not
// answer is closed.
func (s *session) alive(timeout time.Duration) bool {
	if err := s.conn.UpdateDeadline(timeout); err != nil {
		s.close()
		return false
	}
	if err := s.conn.Noop(); err != nil {
		s.close()
		return false
	}
	return true
}

// quit ends the session politely (QUIT), then closes the connection whatever the server
// answered: go-mail leaves it open when QUIT fails.
func (s *session) quit(timeout time.Duration) {
	if s.conn.UpdateDeadline(timeout) == nil && s.conn.Quit() == nil {
		return
	}
	s.close()
}

// close closes the connection without a word, for a session in an unknown state (after an
// error): what the server makes of it no longer matters.
func (s *session) close() { _ = s.conn.Close() }

// sessions is the pool of a Sender's SMTP sessions: at most max open at once, idle or in
// use. A session is used by one send at a time (an SMTP session is a conversation), kept
// after a mail the server accepted, closed after any error, and closed when it waits unused
// for longer than idle. Waiting sessions are handed out in the order they came back (a
// channel): under a trickle of mails every session of an earlier burst may stay open, up
// to max.
type sessions struct {
	// waiting holds the sessions between two mails. A session whose idle timer fired stays
	// in it, closed, until a send takes it and dials a new one in its place.
	waiting chan *session
	// room holds one token for each session that may still be dialled.
	room chan struct{}
	// idle is how long a session may wait unused; timeout bounds each command.
	idle, timeout time.Duration
}

func newSessions(max int, idle, timeout time.Duration) *sessions {
	p := &sessions{waiting: make(chan *session, max), room: make(chan struct{}, max), idle: idle, timeout: timeout}
	for range max {
		p.room <- struct{}{}
	}
	return p
}

// take returns a waiting session the server still answers on, or nil when the caller must
// dial one (then it holds a place for it: it gives the session, or calls free, afterwards).
// It waits, until ctx ends, while max sessions are in use.
func (p *sessions) take(ctx context.Context) (*session, error) {
	var s *session
	select {
	case s = <-p.waiting: // a session that waits goes before a new one
	default:
		select {
		case s = <-p.waiting:
		case <-p.room:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !s.idle.Stop() {
		return nil, nil // its idle timer closed it: dial a new one in its place
	}
	if !s.alive(p.timeout) {
		return nil, nil // the server closed it: likewise
	}
	return s, nil
}

// give takes s back after a send: kept for the next mail when err is nil, closed
// otherwise (the session may be anywhere in the SMTP conversation).
func (p *sessions) give(s *session, err error) {
	if err != nil {
		s.close()
		p.free()
		return
	}
	s.idle = time.AfterFunc(p.idle, func() {
		s.quit(p.timeout)
	})
	p.waiting <- s // never blocks: at most max sessions exist
}

// free gives back the place of a session that was closed or never dialled.
func (p *sessions) free() { p.room <- struct{}{} }

// close ends every waiting session. Sessions in use are closed by their idle timers once
// given back.
func (p *sessions) close() {
	for {
		select {
		case s := <-p.waiting:
			if s.idle.Stop() {
				s.quit(p.timeout)
			}
			p.free()
		default:
			return
		}
	}
}
