package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// errUsage is returned after the usage text has been printed.
var errUsage = errors.New("usage")

// command is one warrenctl command. Adding a command is adding a row to commands and
// writing its run function; the dispatcher, flags and usage text follow.
type command struct {
	// name is the words that select it, e.g. "broker apply-users".
	name string
	// args names the positional arguments it requires, e.g. "QUEUE"; none when empty.
	args    []string
	summary string
	// flags binds the flags the command accepts to the configuration (nil: none).
	flags func(*Config, *flag.FlagSet)
	run   func(context.Context, *invocation) error
}

// invocation is what a running command has: its configuration (environment and flags),
// its positional arguments, the raw environment for per-service secrets, where to print,
// and the logger.
type invocation struct {
	config  Config
	args    []string
	environ map[string]string
	stdout  io.Writer
	logger  *slog.Logger
}

func brokerFlags(c *Config, fs *flag.FlagSet) { c.Broker.bindFlags(fs) }

// commands is every warrenctl command, in the order usage lists them.
var commands = []command{
	{name: "broker setup", flags: brokerFlags, run: brokerSetup,
		summary: "apply-definitions, then apply-users: everything a new broker needs (compose's broker-setup)"},
	{name: "broker apply-definitions", flags: brokerFlags, run: brokerApplyDefinitions,
		summary: "import the topology and its policies (definitions file) into the vhost, creating the vhost if needed"},
	{name: "broker apply-users", flags: brokerFlags, run: brokerApplyUsers,
		summary: "create or update one user per service with least-privilege permissions; delete guest"},
	{name: "broker permissions", run: brokerPermissions,
		summary: "print each service user's permissions, worked out from the topology (no broker needed)"},
	{name: "secrets init", flags: secretsFlags, run: secretsInit,
		summary: "write every password a deployment needs (taken from the environment, kept from an earlier run, or generated) and each service's URLs (compose's secrets)"},
	{name: "oidc setup", flags: oidcFlags, run: oidcSetup,
		summary: "register Warren's OAuth 2 client warren-cli with Hydra, creating or updating it (compose's oidc-setup)"},
	{name: "token", flags: tokenFlags, run: token,
		summary: "log a user in through the OpenID Connect provider and the login app; print their access token"},
	{name: "dlq list", flags: dlqListFlags, run: dlqList,
		summary: "every dead-letter queue with its message count, and the unroutable and archive queues"},
	{name: "dlq inspect", args: []string{"QUEUE"}, flags: dlqInspectFlags, run: dlqInspect,
		summary: "show the messages at the head of QUEUE and why each was dead-lettered; they stay there"},
	{name: "dlq replay", args: []string{"QUEUE"}, flags: dlqReplayFlags, run: dlqReplay,
		summary: "send dead letters back to the queue that failed them (or --to original), then remove them"},
	{name: "dlq purge", args: []string{"QUEUE"}, flags: dlqPurgeFlags, run: dlqPurge,
		summary: "delete every message of QUEUE for good (needs --yes)"},
}

// findCommand returns the command whose name the leading args spell, and the args after it.
func findCommand(args []string) (*command, []string) {
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == commands[i].name {
			return &commands[i], args[len(words):]
		}
	}
	return nil, nil
}

// parseFlags parses args into cfg and returns the positional arguments, which must be
// exactly the command's. Flags may come before or after them.
func (c *command) parseFlags(cfg *Config, args []string, stderr io.Writer) ([]string, error) {
	fs := flag.NewFlagSet("warrenctl "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if c.flags != nil {
		c.flags(cfg, fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: warrenctl %s [flags]\n\n%s\n", c.synopsis(), c.summary)
		fs.PrintDefaults()
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(positional) > len(c.args):
		fmt.Fprintf(stderr, "warrenctl %s: unexpected argument %q\n", c.name, positional[len(c.args)])
	case len(positional) < len(c.args):
		fmt.Fprintf(stderr, "warrenctl %s: missing %s\n", c.name, c.args[len(positional)])
	default:
		return positional, nil
	}
	fs.Usage()
	return nil, errUsage
}

// synopsis is the command's name and its positional arguments.
func (c *command) synopsis() string {
	return strings.Join(append([]string{c.name}, c.args...), " ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: warrenctl <command> [flags]   (warrenctl <command> -h for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-26s %s\n", c.synopsis(), c.summary)
	}
	fmt.Fprintln(w, `
environment (flags override the non-secret ones):
  RABBITMQ_API_URL        management API (default http://localhost:15672)
  RABBITMQ_AMQP_URL       AMQP, for the dlq commands (default amqp://<the API's host>:5672)
  RABBITMQ_ADMIN_USER     administrator (default admin)
  RABBITMQ_ADMIN_PASSWORD its password (or RABBITMQ_ADMIN_PASSWORD_FILE), required
  RABBITMQ_VHOST          vhost (default /)
  RABBITMQ_WAIT           how long to wait for the API (default 60s)
  DEFINITIONS_FILE        topology to import (default deploy/rabbitmq/definitions.json)
  <SERVICE>_AMQP_PASSWORD each service's password (or <SERVICE>_AMQP_PASSWORD_FILE),
                          required by apply-users: ORDER_, INVENTORY_, EMAIL_, SMS_, ANALYTICS_
  secrets init also takes POSTGRES_PASSWORD, <SERVICE>_DB_PASSWORD, HYDRA_DB_PASSWORD,
                          HYDRA_SYSTEM_SECRET, DEMO_<USER>_PASSWORD (ALICE, BOB, SAM) and
                          GRAFANA_ADMIN_PASSWORD; each
                          one unset is kept from an earlier run or generated
  HYDRA_ADMIN_URL         Hydra's admin API, for oidc setup (default http://localhost:4445)
  HYDRA_WAIT              how long oidc setup waits for it (default 60s)
  OIDC_ISSUER             the provider, for token (default http://localhost:4444/)
  USERS_FILE              demo users file token reads the password from
  TOKEN_PASSWORD          token's password instead (or TOKEN_PASSWORD_FILE)
  LOG_LEVEL               debug, info, warn or error (default info)`)
}
