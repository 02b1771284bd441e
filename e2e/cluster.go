package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"golang.org/x/sync/errgroup"
)

// brokerAlias is the name the services' AMQP_URL gives the broker. In a cluster every node
// answers to it (besides its own name), and Docker's DNS leaves out the stopped ones.
const brokerAlias = "rabbitmq"

// startCluster starts n broker nodes at once, rabbit@rabbitmq-1 to rabbit@rabbitmq-n,
// which find each other by classic peer discovery (the node list in their configuration)
// and a shared Erlang cookie. It returns once node 1 sees all n running in its cluster:
// nodes started together can, rarely, form two clusters (rabbitmq-server#12681), and a
// test on such a broker would prove nothing.
func (s *System) startCluster(ctx context.Context, image string, n int) error {
	var conf strings.Builder
	conf.WriteString("cluster_formation.peer_discovery_backend = classic_config\n")
	// As deploy/rabbitmq/rabbitmq.conf says, and why: a node on the minority side of a
	// partition pauses (its clients reconnect to the majority), and a silent peer is
	// called down within 11-19 s instead of 45-75 s.
	conf.WriteString("cluster_partition_handling = pause_minority\nnet_ticktime = 15\n")
	for i := range n {
		s.BrokerNodes = append(s.BrokerNodes, fmt.Sprintf("rabbitmq-%d", i+1))
		fmt.Fprintf(&conf, "cluster_formation.classic_config.nodes.%d = rabbit@%s\n", i+1, s.BrokerNodes[i])
	}
	cookie := "warren-e2e-cookie-" + s.runID
	g, gctx := errgroup.WithContext(ctx)
	for i, name := range s.BrokerNodes {
		g.Go(func() error {
			amqpURL, apiURL, err := s.startRabbitMQ(gctx, image, []string{name, brokerAlias},
				// The node name's host part must resolve to this node alone.
				testcontainers.CustomizeRequestOption(func(req *testcontainers.GenericContainerRequest) error {
					req.Hostname = name
					return nil
				}),
				// A file rather than RABBITMQ_ERLANG_COOKIE, which newer official images
				// no longer read; the entrypoint hands it to the rabbitmq user.
				testcontainers.WithFiles(
					testcontainers.ContainerFile{Reader: strings.NewReader(cookie), ContainerFilePath: "/var/lib/rabbitmq/.erlang.cookie", FileMode: 0o600},
					testcontainers.ContainerFile{Reader: strings.NewReader(conf.String()), ContainerFilePath: "/etc/rabbitmq/conf.d/20-cluster.conf", FileMode: 0o644},
				),
			)
			if i == 0 {
				s.AMQPURL, s.ManagementURL = amqpURL, apiURL
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return waitForCluster(ctx, s.ManagementURL, s.BrokerNodes)
}

// waitForCluster waits until the node behind apiURL lists every one of nodes as running.
func waitForCluster(ctx context.Context, apiURL string, nodes []string) error {
	api := client{base: apiURL}
	deadline := time.Now().Add(time.Minute)
	for {
		var out []struct {
			Name    string `json:"name"`
			Running bool   `json:"running"`
		}
		err := api.call(ctx, http.MethodGet, "/api/nodes", nil, nil, http.StatusOK, &out)
		var running []string
		for _, n := range out {
			if n.Running {
				running = append(running, strings.TrimPrefix(n.Name, "rabbit@"))
			}
		}
		slices.Sort(running)
		if err == nil && slices.Equal(running, nodes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker nodes %v did not form one cluster within a minute: %s sees %v running (%v)", nodes, nodes[0], running, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
