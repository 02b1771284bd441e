package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/deploy/internal/rabbitmgmt"
)

// brokerSetup is what a new broker needs before the services start: the topology first,
// so that no early publish finds a fanout without its queues, then the users.
func brokerSetup(ctx context.Context, inv *invocation) error {
	if err := brokerApplyDefinitions(ctx, inv); err != nil {
		return err
	}
	return brokerApplyUsers(ctx, inv)
}

// brokerApplyDefinitions imports the definitions file over the API: the topology and its
// policies (the alternate exchange, archiving, no delivery limit on the queues nobody
// consumes: messaging.Topology.Policies). (A broker cannot load the file at
// boot on its own: with definitions to load, RabbitMQ creates neither the default vhost nor
// the default user, and the file has neither. See deploy/README.md.)
func brokerApplyDefinitions(ctx context.Context, inv *invocation) error {
	cfg := inv.config.Broker
	definitions, err := os.ReadFile(cfg.DefinitionsFile)
	if err != nil {
		return fmt.Errorf("read definitions: %w", err)
	}
	api, err := adminClient(ctx, cfg)
	if err != nil {
		return err
	}
	created, err := api.EnsureVHost(ctx, cfg.VHost)
	if err != nil {
		return fmt.Errorf("vhost %s: %w", cfg.VHost, err)
	}
	if created {
		// The administrator needs rights in a vhost it made to work in it later
		// (inspecting dead letters, say).
		all := rabbitmgmt.Permissions{Configure: ".*", Write: ".*", Read: ".*"}
		if err := api.PutPermissions(ctx, cfg.VHost, cfg.AdminUser, all); err != nil {
			return fmt.Errorf("vhost %s: admin permissions: %w", cfg.VHost, err)
		}
		inv.logger.InfoContext(ctx, "vhost created", "vhost", cfg.VHost)
	}
	if err := api.ImportDefinitions(ctx, cfg.VHost, definitions); err != nil {
		return fmt.Errorf("import %s: %w", cfg.DefinitionsFile, err)
	}
	inv.logger.InfoContext(ctx, "definitions imported", "file", cfg.DefinitionsFile, "vhost", cfg.VHost)
	return nil
}

func brokerApplyUsers(ctx context.Context, inv *invocation) error {
	cfg := inv.config.Broker
	passwords, err := servicePasswords(inv.environ)
	if err != nil {
		return err
	}
	api, err := adminClient(ctx, cfg)
	if err != nil {
		return err
	}
	return brokeraccess.Apply(ctx, api, brokeraccess.ApplyConfig{
		VHost: cfg.VHost, Passwords: passwords, AdminUser: cfg.AdminUser,
	}, inv.logger)
}

// brokerPermissions prints the permissions apply-users would set, for review.
func brokerPermissions(_ context.Context, inv *invocation) error {
	w := tabwriter.NewWriter(inv.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "USER\tRIGHT\tEXCHANGE\tPATTERN")
	for _, s := range brokeraccess.Services() {
		a, err := brokeraccess.For(topology, s)
		if err != nil {
			return err
		}
		p := a.Permissions()
		for _, row := range [][2]string{{"configure", p.Configure}, {"write", p.Write}, {"read", p.Read}} {
			fmt.Fprintf(w, "%s\t%s\t\t%s\n", s.Name, row[0], row[1])
		}
		for _, tp := range a.TopicPermissions() {
			fmt.Fprintf(w, "%s\ttopic write\t%s\t%s\n", s.Name, tp.Exchange, tp.Write)
			fmt.Fprintf(w, "%s\ttopic read\t%s\t%s\n", s.Name, tp.Exchange, tp.Read)
		}
	}
	return w.Flush()
}

// adminClient returns a management API client once the API answers.
func adminClient(ctx context.Context, cfg BrokerConfig) (*rabbitmgmt.Client, error) {
	api, err := rabbitmgmt.New(rabbitmgmt.Config{URL: cfg.APIURL, User: cfg.AdminUser, Password: cfg.AdminPassword})
	if err != nil {
		return nil, err
	}
	if err := api.WaitReady(ctx, cfg.Wait); err != nil {
		return nil, err
	}
	return api, nil
}
