// Package e2e is Warren's end-to-end suite: it runs every service in a container and checks
// the whole flow from outside, as a user would: HTTP on mapped ports, Mailpit's and
// Jaeger's APIs, and AMQP only to plant a poison message.
//
// TestMain starts one system for all the tests (Start): RabbitMQ with
// deploy/rabbitmq/definitions.json loaded, PostgreSQL with a database per service, Mailpit,
// Jaeger, then inventory, order, two email replicas, sms and analytics from the
// warren/<service>:$WARREN_TAG images, all on one Docker network. Each scenario is a test
// of its own; they run one after another because the running totals are global.
//
//	cd e2e && go test -count=1 ./...    # after `make images`; -short skips everything
//
// Images are named as in the Makefile (RABBITMQ_IMAGE, POSTGRES_IMAGE, JAEGER_IMAGE,
// MAILPIT_IMAGE, WARREN_TAG). On machines without Ryuk's image set
// TESTCONTAINERS_RYUK_DISABLED=true; the suite removes its containers itself, also when
// interrupted, and the next run removes those of a run that was killed.
//
// The files: system.go and containers.go start and stop the system; clients.go, mailpit.go
// and jaeger.go are the clients a user would have; the *_test.go files are the scenarios.
// Package compose (e2e/compose) runs docker-compose.yml the same way; package tlsflow
// (e2e/tlsflow) runs the flow once on a system started WithTLS (tls.go); package chaos
// (e2e/chaos, only with WARREN_CHAOS=1) injects faults into systems of its own and
// reconciles what happened to every order (faults.go and cluster.go serve it).
package e2e
