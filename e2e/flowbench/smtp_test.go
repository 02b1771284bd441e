package flowbench

import (
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
)

// smtpSink is the benchmark's mail server: it speaks just enough SMTP for the email
// service (no STARTTLS, no AUTH), accepts every mail and keeps only a count. Mailpit, the
// catcher the end-to-end suite uses, would parse and store every mail on the same two
// cores, and that work is not Warren's.
type smtpSink struct {
	ln    net.Listener
	mails atomic.Int64
}

// startSMTPSink listens on a loopback port until b ends and returns the sink and its address.
func startSMTPSink(b testing.TB) (*smtpSink, string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("smtp sink: %v", err)
	}
	s := &smtpSink{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return // closed
			}
			go s.serve(conn)
		}
	}()
	b.Cleanup(func() { _ = ln.Close() })
	return s, ln.Addr().String()
}

// serve answers one SMTP session: 250 to every command, the data read and discarded.
func (s *smtpSink) serve(conn net.Conn) {
	defer conn.Close()
	tp := textproto.NewConn(conn)
	if tp.PrintfLine("220 sink ESMTP") != nil {
		return
	}
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch verb {
		case "EHLO":
			err = tp.PrintfLine("250-sink\r\n250 8BITMIME")
		case "DATA":
			if err = tp.PrintfLine("354 end with <CRLF>.<CRLF>"); err != nil {
				return
			}
			if _, err = io.Copy(io.Discard, tp.DotReader()); err != nil {
				return
			}
			s.mails.Add(1)
			err = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default: // HELO, MAIL, RCPT, RSET, NOOP
			err = tp.PrintfLine("250 ok")
		}
		if err != nil {
			return
		}
	}
}
