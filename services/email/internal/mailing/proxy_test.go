package mailing

import (
	"io"
	"net"
	"sync"
	"testing"
)

// tcpProxy forwards TCP connections to a server and counts them: how many the client
// opened, and how many were open at most at once. cut closes every open one, as a server
// that restarts or drops its idle sessions.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	dials   int
	open    map[net.Conn]net.Conn // client side → server side
	maxOpen int
}

// startProxy listens on a free port of 127.0.0.1 until t ends and forwards to target.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &tcpProxy{ln: ln, target: target, open: map[net.Conn]net.Conn{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
	})
	return p
}

// Addr is where the client connects.
func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.dials++
		p.open[client] = server
		p.maxOpen = max(p.maxOpen, len(p.open))
		p.mu.Unlock()
		go p.pipe(client, server)
	}
}

// pipe copies both ways until either side closes, then closes both.
func (p *tcpProxy) pipe(client, server net.Conn) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
	p.drop(client)
}

func (p *tcpProxy) drop(client net.Conn) {
	p.mu.Lock()
	server, ok := p.open[client]
	delete(p.open, client)
	p.mu.Unlock()
	if ok {
		_ = client.Close()
		_ = server.Close()
	}
}

// cut closes every connection open now, both ways.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	clients := make([]net.Conn, 0, len(p.open))
	for c := range p.open {
		clients = append(clients, c)
	}
	p.mu.Unlock()
	for _, c := range clients {
		p.drop(c)
	}
}

// counts returns the connections opened so far and the most open at once.
func (p *tcpProxy) counts() (dials, maxOpen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dials, p.maxOpen
}

// openNow is how many connections are open now.
func (p *tcpProxy) openNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.open)
}
