package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	docker "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// More faults for chaos tests, beside faults.go: a container frozen, a command run in
// one, and how one ended.

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

// PauseContainer freezes every process of a container (the cgroup freezer, as `docker
// pause`): its connections stay open and nothing answers on them, as a stalled disk or a
// stop-the-world pause would look to its clients.
//
// The kernel's cgroup freezer can fail to freeze a container whose processes are busy in
// uninterruptible I/O at that instant (runc: "unable to freeze"; seen here once in a
// make test run, under fuse-overlayfs): that is retried, a few times, half a second apart.
func (s *System) PauseContainer(ctx context.Context, name string) error {
	return s.docker(ctx, name, "pause", func(cli *testcontainers.DockerClient, id string) error {
		var err error
		for range 5 {
			if _, err = cli.ContainerPause(ctx, id, docker.ContainerPauseOptions{}); err == nil ||
				!strings.Contains(err.Error(), "unable to freeze") {
				return err
			}
			select {
			case <-ctx.Done():
				return err
			case <-time.After(500 * time.Millisecond):
			}
		}
		return err
	})
}

// UnpauseContainer lets a paused container run on.
func (s *System) UnpauseContainer(ctx context.Context, name string) error {
	return s.docker(ctx, name, "unpause", func(cli *testcontainers.DockerClient, id string) error {
		_, err := cli.ContainerUnpause(ctx, id, docker.ContainerUnpauseOptions{})
		return err
	})
}

// Exec runs cmd in a container and returns its output; a non-zero exit status is an error.
func (s *System) Exec(ctx context.Context, name string, cmd ...string) (string, error) {
	n, err := s.node(name)
	if err != nil {
		return "", err
	}
	code, out, err := n.container.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("exec %s in %s: %w", strings.Join(cmd, " "), name, err)
	}
	text, _ := io.ReadAll(out)
	if code != 0 {
		return string(text), fmt.Errorf("exec %s in %s: exit status %d: %s", strings.Join(cmd, " "), name, code, text)
	}
	return string(text), nil
}
