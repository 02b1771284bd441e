package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"

	docker "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// checkImages fails at once, naming every missing image, instead of letting testcontainers
// try to pull an image no registry serves (Warren's images are only ever built locally).
func checkImages(ctx context.Context, names ...string) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()
	var missing []string
	for _, name := range names {
		if _, err := cli.ImageInspect(ctx, name); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("images missing: %s (run `make images` in the repository root)", strings.Join(missing, ", "))
	}
	return nil
}

// ReapLeftovers removes the containers and networks of earlier runs that were killed before
// they could clean up (a test binary's timeout or a panic skips TestMain's cleanup, and
// Warren runs without Ryuk). Call it only while holding LockHost: then no other run is live.
func ReapLeftovers(ctx context.Context) (removed int, err error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return 0, fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()
	filter := make(docker.Filters).Add("label", LabelRun)
	containers, err := cli.ContainerList(ctx, docker.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range containers.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, docker.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	networks, err := cli.NetworkList(ctx, docker.NetworkListOptions{Filters: filter})
	if err != nil {
		return removed, errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	for _, n := range networks.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, docker.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
