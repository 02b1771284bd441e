package messaging

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// addressTimeout bounds one attempt on one node address: the TCP connection, then the TLS
// and AMQP handshakes (amqp.DefaultDial sets the deadline for both). A node cut off by a
// partition costs this much before the next address is tried; a paused or stopped node
// refuses at once.
const addressTimeout = 10 * time.Second

// nodeDialer connects to one of a cluster's nodes, trying their addresses in turn. A dial
// starts with the address after the one it last connected to: a reconnect follows the
// loss of that connection, most often because its node went away (stopped, or paused by
// pause_minority on the minority side of a partition), so another node is tried first.
// The first dial starts at a random address, so that services spread over the nodes.
type nodeDialer struct {
	addresses []string

	mu   sync.Mutex
	next int
}

func newNodeDialer(addresses []string) *nodeDialer {
	return &nodeDialer{addresses: addresses, next: rand.IntN(len(addresses))}
}

// dial is an amqp.Config Dial function. It ignores the address amqp091-go took from the
// URL: the URL still gives the scheme, credentials, vhost and TLS server name.
func (d *nodeDialer) dial(network, _ string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for i := range d.addresses {
		n := (d.next + i) % len(d.addresses)
		conn, err := amqp.DefaultDial(addressTimeout)(network, d.addresses[n])
		if err == nil {
			d.next = n + 1
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no broker node answered: %w", errors.Join(errs...))
}

// validateAddresses reports an address that is not host:port.
func validateAddresses(addresses []string) error {
	for _, a := range addresses {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fmt.Errorf("messaging config: address %q is not host:port", a)
		}
	}
	return nil
}
