package testkit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/warrenhq/warren/shared/certs"
)

// TLSRabbitMQ is a broker that accepts AMQPS on 5671 with a certificate made for the test.
type TLSRabbitMQ struct {
	// URL is the amqps:// URL of its default vhost, with administrator credentials.
	URL string
	// CA is the PEM certificate of the authority that signed the broker's certificate.
	CA []byte
}

// OwnTLSRabbitMQ generates a certificate authority and a server certificate for localhost,
// starts a broker that serves AMQPS with them, and removes it when t ends.
func OwnTLSRabbitMQ(t testing.TB) *TLSRabbitMQ {
	t.Helper()
	Integration(t)
	caPEM, certPEM, keyPEM, err := serverCertificate("localhost")
	if err != nil {
		t.Fatal(err)
	}
	conf := `listeners.ssl.default = 5671
ssl_options.cacertfile = /etc/rabbitmq/tls/ca.pem
ssl_options.certfile = /etc/rabbitmq/tls/server.pem
ssl_options.keyfile = /etc/rabbitmq/tls/server-key.pem
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
`
	file := func(content []byte, path string) testcontainers.ContainerFile {
		return testcontainers.ContainerFile{Reader: bytes.NewReader(content), ContainerFilePath: path, FileMode: 0o644}
	}
	ctx := context.Background()
	c, err := testcontainers.Run(ctx, envOr("RABBITMQ_IMAGE", DefaultRabbitMQImage),
		testcontainers.WithEnv(map[string]string{"RABBITMQ_DEFAULT_USER": adminUser, "RABBITMQ_DEFAULT_PASS": adminPassword}),
		testcontainers.WithFiles(
			file(caPEM, "/etc/rabbitmq/tls/ca.pem"),
			file(certPEM, "/etc/rabbitmq/tls/server.pem"),
			file(keyPEM, "/etc/rabbitmq/tls/server-key.pem"),
			file([]byte(conf), "/etc/rabbitmq/conf.d/90-tls.conf"),
		),
		testcontainers.WithExposedPorts("5671/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("Server startup complete"), wait.ForListeningPort("5671/tcp")),
	)
	if c != nil {
		t.Cleanup(func() { _ = c.Terminate(context.Background()) })
	}
	if err != nil {
		t.Fatalf("start rabbitmq with TLS: %v", err)
	}
	port, err := c.MappedPort(ctx, "5671/tcp")
	if err != nil {
		t.Fatal(err)
	}
	return &TLSRabbitMQ{
		URL: fmt.Sprintf("amqps://%s:%s@%s/", adminUser, adminPassword, net.JoinHostPort("localhost", port.Port())),
		CA:  caPEM,
	}
}

// ClientTLS is the TLS configuration of a client that trusts the broker's CA.
func (r *TLSRabbitMQ) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r.CA)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// serverCertificate returns a new CA certificate, and a server certificate for host (and
// 127.0.0.1) signed by it with its key, all PEM-encoded: shared/certs, the code of
// `warrenctl secrets init --tls`.
func serverCertificate(host string) (caPEM, certPEM, keyPEM []byte, err error) {
	ca, err := certs.NewAuthority("warren test CA", 24*time.Hour)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM, keyPEM, err = ca.Issue([]string{host, "127.0.0.1"}, 24*time.Hour)
	return ca.CertPEM(), certPEM, keyPEM, err
}
