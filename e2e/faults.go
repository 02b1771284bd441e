package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/network"
	docker "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// The methods below inject faults for chaos tests. Each names a container by its network
// alias: "rabbitmq" (or "rabbitmq-1"… in a cluster), "postgres", "order", "email-1", and
// so on. They act through Docker directly, so that no start-up wait strategy runs again:
// waiting for the system to recover is the test's business. Start the system
// WithFixedHostPorts when a container will be started again, or its ports move.

// StopContainer stops a container as `docker stop` does: SIGTERM, then SIGKILL after timeout.
func (s *System) StopContainer(ctx context.Context, name string, timeout time.Duration) error {
	return s.docker(ctx, name, "stop", func(cli *testcontainers.DockerClient, id string) error {
		seconds := int(timeout.Seconds())
		_, err := cli.ContainerStop(ctx, id, docker.ContainerStopOptions{Timeout: &seconds})
		return err
	})
}

// KillContainer kills a container with SIGKILL: no graceful shutdown at all.
func (s *System) KillContainer(ctx context.Context, name string) error {
	return s.docker(ctx, name, "kill", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerKill(ctx, id, docker.ContainerKillOptions{Signal: "SIGKILL"})
		return err
	})
}

// StartContainer starts a stopped or killed container again, with its network aliases
// and volumes. It returns once Docker started it, not once it is ready.
func (s *System) StartContainer(ctx context.Context, name string) error {
	return s.docker(ctx, name, "start", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerStart(ctx, id, docker.ContainerStartOptions{})
		return err
	})
}

// Disconnect cuts a running container off the system's network, as a network partition
// would: it reaches nothing and nothing reaches it, its published ports included.
func (s *System) Disconnect(ctx context.Context, name string) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	aliases, err := n.container.NetworkAliases(ctx)
	if err != nil {
		return fmt.Errorf("disconnect %s: %w", name, err)
	}
	n.aliases = aliases[s.network.Name]
	return s.docker(ctx, name, "disconnect", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.NetworkDisconnect(ctx, s.network.ID, docker.NetworkDisconnectOptions{Container: id})
		return err
	})
}

// Reconnect connects a container that Disconnect cut off again, with its aliases.
func (s *System) Reconnect(ctx context.Context, name string) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	return s.docker(ctx, name, "reconnect", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.NetworkConnect(ctx, s.network.ID, docker.NetworkConnectOptions{
			Container: id, EndpointConfig: &network.EndpointSettings{Aliases: n.aliases},
		})
		return err
	})
}

// Endpoint returns the host:port where a container's port (e.g. "15672/tcp") is published.
func (s *System) Endpoint(ctx context.Context, name, port string) (string, error) {
	n, err := s.node(name)
	if err != nil {
		return "", err
	}
	return hostPort(ctx, n.container, port)
}

// ContainerNames lists the system's containers by name, in the order they were started.
func (s *System) ContainerNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, len(s.containers))
	for i, n := range s.containers {
		names[i] = n.name
	}
	return names
}

// Logs returns a container's whole log.
func (s *System) Logs(ctx context.Context, name string) (string, error) {
	n, err := s.node(name)
	if err != nil {
		return "", err
	}
	return logs(ctx, n.container)
}

func (s *System) node(name string) (*node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.containers {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no container named %q in the system", name)
}

func (s *System) docker(ctx context.Context, name, action string, do func(cli *testcontainers.DockerClient, id string) error) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%s %s: docker: %w", action, name, err)
	}
	defer cli.Close()
	if err := do(cli, n.container.GetContainerID()); err != nil {
		return fmt.Errorf("%s %s: %w", action, name, err)
	}
	return nil
}
