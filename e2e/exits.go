package e2e

import (
	"context"
	"fmt"

	docker "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Exited reports whether a container has stopped by itself or been stopped, and its exit
// status: a chaos test restarts a service that crashed, as a restart policy would.
func (s *System) Exited(ctx context.Context, name string) (exited bool, code int, err error) {
	err = s.docker(ctx, name, "inspect", func(cli *testcontainers.DockerClient, id string) error {
		res, err := cli.ContainerInspect(ctx, id, docker.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if res.Container.State == nil {
			return fmt.Errorf("no state reported")
		}
		exited, code = !res.Container.State.Running, res.Container.State.ExitCode
		return nil
	})
	return exited, code, err
}
