package messaging_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/certs"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// A service configured with AMQP_URL=amqps://… and AMQP_CA_FILE talks to a broker over TLS;
// one that does not trust the broker's certificate is refused before it sends anything.
func TestAMQPSWithACertificateTheTestGenerated(t *testing.T) {
	broker := testkit.OwnTLSRabbitMQ(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, broker.CA, 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg, err := service.BaseConfig{AMQPURL: broker.URL, AMQPCAFile: caFile, AMQPPrefetch: 1}.Broker()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, broker.URL, cfg)
	rec := &recorder{}
	e.run(messaging.RetryConfig{}, messaging.Consumer{Queue: events.QueueEmail, Handler: rec.handler()})
	e.publish(messaging.Topic(events.ExchangeOrderEvents, ""), placed(t, "o-tls", "carrot-seeds"))
	rec.waitFor(t, "o-tls")

	// Trusting the system's store only, or another CA (AMQP_CA_FILE naming the wrong file).
	otherCA, err := certs.NewAuthority("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCAFile := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCAFile, otherCA.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongCA, err := service.BaseConfig{AMQPURL: broker.URL, AMQPCAFile: otherCAFile}.Broker()
	if err != nil {
		t.Fatal(err)
	}
	wrongCA.ConnectTimeout = 2 * time.Second
	for what, untrusting := range map[string]messaging.Config{
		"the system's trust store": {URL: broker.URL, ConnectTimeout: 2 * time.Second},
		"another CA":               wrongCA,
	} {
		if b, err := messaging.Connect(context.Background(), untrusting, topology, logger); err == nil {
			b.Close()
			t.Errorf("trusting %s: connected over TLS to a broker whose certificate it cannot verify", what)
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("trusting %s: refused for another reason than the certificate: %v", what, err)
		}
	}
}
