package service

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Task is a long-running part of a service: an HTTP server, a message router, an outbox
// relay. It runs until ctx is cancelled and then returns once it has stopped cleanly.
type Task func(ctx context.Context) error

// RunAll runs tasks until ctx is cancelled or one of them fails, which cancels the others,
// and waits for all of them to return.
func RunAll(ctx context.Context, tasks ...Task) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, t := range tasks {
		g.Go(func() error { return t(ctx) })
	}
	return g.Wait()
}
