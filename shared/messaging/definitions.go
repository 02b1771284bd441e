package messaging

import amqp "github.com/rabbitmq/amqp091-go"

// Definitions is the part of a RabbitMQ definitions file (the format of the management
// API's /api/definitions and of load_definitions) that describes a topology. A broker
// that loads it at boot has every queue before the first service starts, so nothing
// published early is lost to a fanout with no queues yet.
type Definitions struct {
	Exchanges []ExchangeDefinition `json:"exchanges"`
	Queues    []QueueDefinition    `json:"queues"`
	Bindings  []BindingDefinition  `json:"bindings"`
	Policies  []PolicyDefinition   `json:"policies"`
}

// ExchangeDefinition is one exchange in a definitions file.
type ExchangeDefinition struct {
	Name       string     `json:"name"`
	VHost      string     `json:"vhost"`
	Type       string     `json:"type"`
	Durable    bool       `json:"durable"`
	AutoDelete bool       `json:"auto_delete"`
	Internal   bool       `json:"internal"`
	Arguments  amqp.Table `json:"arguments"`
}

// QueueDefinition is one queue in a definitions file.
type QueueDefinition struct {
	Name       string     `json:"name"`
	VHost      string     `json:"vhost"`
	Durable    bool       `json:"durable"`
	AutoDelete bool       `json:"auto_delete"`
	Arguments  amqp.Table `json:"arguments"`
}

// BindingDefinition is one binding in a definitions file.
type BindingDefinition struct {
	Source          string     `json:"source"`
	VHost           string     `json:"vhost"`
	Destination     string     `json:"destination"`
	DestinationType string     `json:"destination_type"`
	RoutingKey      string     `json:"routing_key"`
	Arguments       amqp.Table `json:"arguments"`
}

// Definitions renders t, with the same arguments Declare uses and the policies, for vhost.
func (t Topology) Definitions(vhost string) Definitions {
	d := Definitions{Policies: t.Policies(vhost)}
	exchange := func(e Exchange) {
		d.Exchanges = append(d.Exchanges, ExchangeDefinition{Name: e.Name, VHost: vhost, Type: string(e.Kind),
			Durable: true, Arguments: amqp.Table{}})
	}
	for _, e := range append(infrastructureExchanges(), t.Exchanges...) {
		exchange(e)
	}
	queue := func(name string, args amqp.Table) {
		d.Queues = append(d.Queues, QueueDefinition{Name: name, VHost: vhost, Durable: true, Arguments: args})
	}
	bind := func(exchange, queue, key string) {
		d.Bindings = append(d.Bindings, BindingDefinition{Source: exchange, VHost: vhost, Destination: queue,
			DestinationType: "queue", RoutingKey: key, Arguments: amqp.Table{}})
	}
	queue(UnroutableQueue, sinkQueueArgs())
	bind(UnroutableExchange, UnroutableQueue, "")
	queue(ArchiveQueue, sinkQueueArgs())
	bind(ArchiveExchange, ArchiveQueue, "")
	for _, q := range t.Queues {
		exchange(deadLetterExchange(q))
		queue(q.Name, WorkQueueArgs(q))
		queue(DeadLetterQueueName(q.Name), DeadLetterQueueArgs())
		bind(DeadLetterExchangeName(q.Name), DeadLetterQueueName(q.Name), q.Name)
		for _, b := range q.Bindings {
			bind(b.Exchange, q.Name, b.Key)
		}
	}
	return d
}
