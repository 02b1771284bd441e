package messaging

import "strings"

// Watermill addresses a publish by one string, its topic. Warren's topics name an AMQP
// exchange and a routing key: "exchange:routing.key". A fanout needs no key ("order.events:")
// and the default exchange has no name (":queue-name"). Keeping both in the topic is what
// lets one publisher (and the outbox relay, which stores only the topic) reach every
// exchange with the right key.

// Topic returns the Watermill topic that publishes to exchange with routingKey.
func Topic(exchange, routingKey string) string { return exchange + ":" + routingKey }

// SplitTopic is the inverse of Topic. A topic without a colon is taken as an exchange name.
func SplitTopic(topic string) (exchange, routingKey string) {
	exchange, routingKey, _ = strings.Cut(topic, ":")
	return exchange, routingKey
}
