package main

import (
	"bytes"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
)

// secretsRun runs `warrenctl secrets init --dir dir` with environ.
func secretsRun(t *testing.T, dir string, environ map[string]string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"secrets", "init", "--dir", dir}, environ, &out, io.Discard); err != nil {
		t.Fatalf("secrets init: %v (%s)", err, out.String())
	}
}

func readSecret(t *testing.T, path ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(path...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSecretsInitGeneratesKeepsAndTakesOverrides(t *testing.T) {
	dir := t.TempDir()
	secretsRun(t, dir, map[string]string{"EMAIL_DB_PASSWORD": "chosen by the operator"})

	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)
	admin := readSecret(t, dir, "infra", "rabbitmq_admin_password")
	if !urlSafe.MatchString(admin) {
		t.Errorf("generated admin password %q: want 32 URL-safe characters", admin)
	}
	seen := map[string]bool{admin: true}
	for _, name := range brokeraccess.Names() {
		amqpPassword := readSecret(t, dir, "infra", name+"_amqp_password")
		if seen[amqpPassword] {
			t.Errorf("%s: password %q used twice", name, amqpPassword)
		}
		seen[amqpPassword] = true

		amqpURL, err := url.Parse(readSecret(t, dir, name, "amqp_url"))
		if err != nil {
			t.Fatal(err)
		}
		if pw, _ := amqpURL.User.Password(); amqpURL.User.Username() != name || pw != amqpPassword || amqpURL.Host != "rabbitmq:5672" {
			t.Errorf("%s: amqp_url %s, want its own user and password on rabbitmq:5672", name, amqpURL.Redacted())
		}
		dbURL, err := url.Parse(readSecret(t, dir, name, "database_url"))
		if err != nil {
			t.Fatal(err)
		}
		dbPassword := readSecret(t, dir, "infra", name+"_db_password")
		if pw, _ := dbURL.User.Password(); dbURL.User.Username() != name || pw != dbPassword || dbURL.Path != "/"+name {
			t.Errorf("%s: database_url %s, want its own role, password and database", name, dbURL.Redacted())
		}
		// A service's directory holds its own URLs and nothing else.
		entries, err := os.ReadDir(filepath.Join(dir, name))
		if err != nil || len(entries) != 2 {
			t.Errorf("%s: directory holds %v (%v), want amqp_url and database_url only", name, entries, err)
		}
	}
	if got := readSecret(t, dir, "infra", "email_db_password"); got != "chosen by the operator" {
		t.Errorf("EMAIL_DB_PASSWORD not taken: %q", got)
	}
	// Special characters are escaped in the URL, not pasted into it.
	if u, err := url.Parse(readSecret(t, dir, "email", "database_url")); err != nil {
		t.Error(err)
	} else if pw, _ := u.User.Password(); pw != "chosen by the operator" {
		t.Errorf("email database_url password %q", pw)
	}

	// A second run keeps every password (the broker and database volumes hold them),
	// except the one the environment now sets.
	orderURL := readSecret(t, dir, "order", "amqp_url")
	secretsRun(t, dir, map[string]string{"RABBITMQ_ADMIN_PASSWORD": "new-admin"})
	if got := readSecret(t, dir, "order", "amqp_url"); got != orderURL {
		t.Errorf("order amqp_url changed on a second run: %q, was %q", got, orderURL)
	}
	if got := readSecret(t, dir, "infra", "email_db_password"); got != "chosen by the operator" {
		t.Errorf("email_db_password not kept: %q", got)
	}
	if got := readSecret(t, dir, "infra", "rabbitmq_admin_password"); got != "new-admin" {
		t.Errorf("RABBITMQ_ADMIN_PASSWORD not taken on the second run: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
