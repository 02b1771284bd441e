package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigDefaultsAndFlagsOverrideEnvironment(t *testing.T) {
	cfg, err := loadConfig(map[string]string{"RABBITMQ_VHOST": "warren", "RABBITMQ_ADMIN_PASSWORD": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.APIURL != "http://localhost:15672" || cfg.Broker.AdminUser != "admin" || cfg.Broker.VHost != "warren" {
		t.Fatalf("config = %+v", cfg.Broker)
	}
	cmd, rest := findCommand([]string{"broker", "apply-users", "--vhost", "other", "--api", "http://rabbitmq:15672"})
	if cmd == nil || cmd.name != "broker apply-users" {
		t.Fatalf("findCommand = %v", cmd)
	}
	if _, err := cmd.parseFlags(&cfg, rest, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.VHost != "other" || cfg.Broker.APIURL != "http://rabbitmq:15672" || cfg.Broker.AdminPassword != "s3cret" {
		t.Fatalf("after flags: %+v", cfg.Broker)
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "order")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{
		"ORDER_AMQP_PASSWORD_FILE": file, "INVENTORY_AMQP_PASSWORD": "inv",
		"EMAIL_AMQP_PASSWORD": "em", "SMS_AMQP_PASSWORD": "sms",
	}
	_, err := servicePasswords(environ)
	if err == nil || !strings.Contains(err.Error(), "ANALYTICS_AMQP_PASSWORD") {
		t.Fatalf("missing analytics password: err = %v", err)
	}
	environ["ANALYTICS_AMQP_PASSWORD"] = "an"
	pw, err := servicePasswords(environ)
	if err != nil {
		t.Fatal(err)
	}
	if pw["order"] != "from-file" || pw["analytics"] != "an" {
		t.Fatalf("passwords = %v", pw)
	}
	environ["ORDER_AMQP_PASSWORD"] = "also-set"
	if _, err := servicePasswords(environ); err == nil {
		t.Fatal("both ORDER_AMQP_PASSWORD and its _FILE set: no error")
	}
}

func TestUnknownCommandAndStrayArgumentsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"broker"}, {"broker", "nope"}, {"broker", "permissions", "extra"}} {
		var stderr bytes.Buffer
		err := run(t.Context(), args, map[string]string{}, &bytes.Buffer{}, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "usage: warrenctl") {
			t.Errorf("run(%q) = %v, stderr %q", args, err, stderr.String())
		}
	}
}

func TestPermissionsCommandListsEveryService(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"broker", "permissions"}, map[string]string{}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"order ", "inventory ", "email ", "sms ", "analytics ", `^(order\.events\.email|`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestDLQArgumentsAndFlagsInAnyOrder(t *testing.T) {
	for _, args := range [][]string{
		{"dlq", "inspect", "order.events.email.dlq", "--limit", "3", "--json"},
		{"dlq", "inspect", "--limit", "3", "order.events.email.dlq", "--json"},
	} {
		cfg, _ := loadConfig(map[string]string{})
		cmd, rest := findCommand(args)
		got, err := cmd.parseFlags(&cfg, rest, &bytes.Buffer{})
		if err != nil || len(got) != 1 || got[0] != "order.events.email.dlq" || cfg.DLQ.Limit != 3 || !cfg.DLQ.JSON {
			t.Errorf("%q: args %q, err %v, options %+v", args, got, err, cfg.DLQ)
		}
	}
	for _, args := range [][]string{{"dlq", "inspect"}, {"dlq", "purge", "a.dlq", "b.dlq"}, {"dlq", "list", "a.dlq"}} {
		var stderr bytes.Buffer
		if err := run(t.Context(), args, map[string]string{}, &bytes.Buffer{}, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

func TestAMQPURLDefaultsToTheAPIsHost(t *testing.T) {
	for env, want := range map[string]string{
		"":                         "amqp://localhost:5672",
		"http://rabbitmq:15672":    "amqp://rabbitmq:5672",
		"https://[::1]:15671/mgmt": "amqp://[::1]:5672",
	} {
		environ := map[string]string{}
		if env != "" {
			environ["RABBITMQ_API_URL"] = env
		}
		cfg, _ := loadConfig(environ)
		if got, err := cfg.Broker.amqpURL(); err != nil || got != want {
			t.Errorf("API %q: AMQP URL %q, %v; want %q", env, got, err, want)
		}
	}
	cfg, _ := loadConfig(map[string]string{"RABBITMQ_AMQP_URL": "amqps://broker:5671"})
	if got, _ := cfg.Broker.amqpURL(); got != "amqps://broker:5671" {
		t.Errorf("explicit AMQP URL became %q", got)
	}
}

func TestPrintableBodyStaysOneLineOfWholeCharacters(t *testing.T) {
	for _, c := range []struct {
		body      string
		n         int
		want      string
		truncated bool
	}{
		{`{"a": 1}`, 100, `{"a": 1}`, false},
		{"{\n\t\"a\": 1\n}", 100, `{  "a": 1 }`, false},
		{"héllo", 2, "h", true}, // the cut would split é
		{"a\xffb", 10, "a\uFFFDb", false},
	} {
		got, truncated := printable([]byte(c.body), c.n)
		if got != c.want || truncated != c.truncated {
			t.Errorf("printable(%q, %d) = %q, %v; want %q, %v", c.body, c.n, got, truncated, c.want, c.truncated)
		}
	}
}
