package main

import (
	"testing"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// harness is the service under test (see testkit.Component); main_test.go adds the
// service's own helpers to it.
type harness struct{ *testkit.Component }

// startService starts the service on a fresh vhost with topology declared and a fresh
// database. The test's requests carry the token of sam, who is staff.
func startService(t *testing.T, name string, topology messaging.Topology, env map[string]string) *harness {
	t.Helper()
	c := testkit.StartComponent(t, name, run, topology, testkit.InOrder(env))
	c.Token = c.Hydra.Token(t, "sam", auth.RoleStaff)
	return &harness{c}
}
