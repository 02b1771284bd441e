package events_test

import (
	"os"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// A broker that booted from the definitions file must accept the services' own
// declarations unchanged: any difference in arguments would make their start-up fail
// with PRECONDITION_FAILED.
func TestDefinitionsFileLoadsAndAgreesWithServiceDeclarations(t *testing.T) {
	broker := testkit.SharedRabbitMQ(t)
	url := broker.VHost(t)
	defs, err := os.ReadFile(definitionsFile)
	if err != nil {
		t.Fatal(err)
	}
	broker.LoadDefinitions(t, url, defs)

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	topology := events.Topology(events.DefaultSMSRegions)
	for _, q := range topology.Queues {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		// The queue must already exist (passive), and declaring it as a service does must succeed.
		if _, err := ch.QueueDeclarePassive(q.Name, true, false, false, false, nil); err != nil {
			t.Fatalf("%s not created by the definitions file: %v", q.Name, err)
		}
		if err := topology.DeclareQueue(ch, q.Name); err != nil {
			t.Errorf("declaring %s over the loaded definitions: %v", q.Name, err)
		}
		ch.Close()
	}
}
