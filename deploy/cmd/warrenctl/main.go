// Command warrenctl is Warren's operator tool: it sets up a RabbitMQ broker for the
// services (topology, one least-privilege user per service, no guest) through the
// management API, and lists, inspects, replays and purges dead letters over AMQP. Run it
// without arguments for the list of commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/warrenhq/warren/shared/events"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], environ(), os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "warrenctl:", err)
		os.Exit(1)
	}
}

// run finds the command args name, parses its flags over the configuration from environ,
// and runs it. Logs go to stderr, a command's output to stdout.
func run(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) error {
	cmd, rest := findCommand(args)
	if cmd == nil {
		usage(stderr)
		return errUsage
	}
	cfg, err := loadConfig(environ)
	if err != nil {
		return err
	}
	positional, err := cmd.parseFlags(&cfg, rest, stderr)
	if err != nil {
		return err
	}
	inv := &invocation{config: cfg, args: positional, environ: environ, stdout: stdout, logger: newLogger(stderr, cfg.LogLevel)}
	if err := cmd.run(ctx, inv); err != nil {
		return fmt.Errorf("%s: %w", cmd.name, err)
	}
	return nil
}

// topology is Warren's, with every region bound to sms: it names the queues for the
// permissions and the dead-letter commands, which do not depend on the regions.
var topology = events.Topology(events.Regions)

func newLogger(w io.Writer, level string) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl}))
}
