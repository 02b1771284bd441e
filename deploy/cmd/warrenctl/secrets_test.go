package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/deploy/internal/demousers"
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

// TestSecretsInitWritesHydraAndDemoUsers: secrets init writes Hydra's config file (its
// database URL with the password the database's init script gets, and a system secret)
// and the login app's users file with the three demo users and their roles; a second run
// keeps every password, except the one the environment now sets.
func TestSecretsInitWritesHydraAndDemoUsers(t *testing.T) {
	dir := t.TempDir()
	secretsRun(t, dir, map[string]string{"DEMO_BOB_PASSWORD": "bob's choice"})

	var hydra struct {
		DSN     string `json:"dsn"`
		Secrets struct {
			System []string `json:"system"`
		} `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(readSecret(t, dir, "hydra", "hydra.json")), &hydra); err != nil {
		t.Fatal(err)
	}
	dsn, err := url.Parse(hydra.DSN)
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := dsn.User.Password(); dsn.User.Username() != "hydra" || pw != readSecret(t, dir, "infra", "hydra_db_password") ||
		dsn.Host != "postgres:5432" || dsn.Path != "/hydra" {
		t.Errorf("hydra dsn %s: want role hydra with infra/hydra_db_password on postgres:5432/hydra", dsn.Redacted())
	}
	system := readSecret(t, dir, "hydra", "system_secret")
	if len(hydra.Secrets.System) != 1 || hydra.Secrets.System[0] != system || len(system) < 32 {
		t.Errorf("hydra secrets.system %q, want [system_secret] of 32 characters or more", hydra.Secrets.System)
	}

	usersFile := filepath.Join(dir, "login", demousers.FileName)
	users, err := demousers.Load(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	wantRoles := map[string]string{"alice": "customer", "bob": "customer", "sam": "staff"}
	// The load-test customers of warren-load, under the same quotas as alice and bob.
	for i := 1; i <= demousers.LoadCustomers; i++ {
		wantRoles[fmt.Sprintf("load-%02d", i)] = "customer"
	}
	passwords := map[string]string{}
	for name, role := range wantRoles {
		u, err := users.User(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Roles) != 1 || u.Roles[0] != role {
			t.Errorf("%s: roles %v, want [%s]", name, u.Roles, role)
		}
		passwords[name] = u.Password
	}
	if len(users.Users) != len(wantRoles) {
		t.Errorf("users file holds %d users, want %d", len(users.Users), len(wantRoles))
	}
	if passwords["bob"] != "bob's choice" {
		t.Errorf("DEMO_BOB_PASSWORD not taken: %q", passwords["bob"])
	}
	if passwords["alice"] == passwords["sam"] || len(passwords["alice"]) != 32 {
		t.Errorf("generated passwords alice %q, sam %q: want two different ones of 32 characters", passwords["alice"], passwords["sam"])
	}
	distinct := map[string]bool{}
	for _, pw := range passwords {
		distinct[pw] = true
	}
	if len(distinct) != len(passwords) {
		t.Errorf("%d users share %d passwords: want one of its own each", len(passwords), len(distinct))
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "login")); err != nil || len(entries) != 1 {
		t.Errorf("login directory holds %v (%v), want the users file only", entries, err)
	}

	secretsRun(t, dir, map[string]string{"DEMO_SAM_PASSWORD": "sam's new one"})
	again, err := demousers.Load(usersFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, was := range passwords {
		u, _ := again.User(name)
		want := was
		if name == "sam" {
			want = "sam's new one"
		}
		if u.Password != want {
			t.Errorf("second run: %s's password %q, want %q", name, u.Password, want)
		}
	}
	if got := readSecret(t, dir, "hydra", "system_secret"); got != system {
		t.Errorf("second run changed Hydra's system secret")
	}
	if got := readSecret(t, dir, "infra", "hydra_db_password"); got != mustPassword(t, hydra.DSN) {
		t.Errorf("second run changed Hydra's database password")
	}
}

func mustPassword(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	return pw
}

// TestSecretsInitWritesGrafanaAdminPassword: Grafana's admin password is generated into
// its own directory (its own volume in compose, mounted only into Grafana), kept on a
// later run, and taken from GRAFANA_ADMIN_PASSWORD when set.
func TestSecretsInitWritesGrafanaAdminPassword(t *testing.T) {
	dir := t.TempDir()
	secretsRun(t, dir, nil)
	generated := readSecret(t, dir, "grafana", "admin_password")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).MatchString(generated) {
		t.Errorf("generated Grafana admin password %q: want 32 URL-safe characters", generated)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "grafana")); err != nil || len(entries) != 1 {
		t.Errorf("grafana directory holds %v (%v), want admin_password only", entries, err)
	}
	secretsRun(t, dir, nil)
	if got := readSecret(t, dir, "grafana", "admin_password"); got != generated {
		t.Errorf("Grafana admin password changed on a second run: %q, was %q", got, generated)
	}
	secretsRun(t, dir, map[string]string{"GRAFANA_ADMIN_PASSWORD": "chosen"})
	if got := readSecret(t, dir, "grafana", "admin_password"); got != "chosen" {
		t.Errorf("GRAFANA_ADMIN_PASSWORD not taken: %q", got)
	}
}

// TestSecretsInitWritesTheExporterPassword: the PostgreSQL exporter's password is
// generated once, written where the database's init script reads it (infra) and into the
// exporter's own volume, and nothing else goes there (no other password, no CA without
// --tls); a second run keeps it, a variable replaces it in both.
func TestSecretsInitWritesTheExporterPassword(t *testing.T) {
	dir := t.TempDir()
	secretsRun(t, dir, nil)
	pw := readSecret(t, dir, "infra", "postgres_exporter_db_password")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).MatchString(pw) {
		t.Errorf("generated exporter password %q: want 32 URL-safe characters", pw)
	}
	if got := readSecret(t, dir, "postgres-exporter", "postgres_exporter_db_password"); got != pw {
		t.Errorf("postgres-exporter volume holds %q, infra %q: want the same password", got, pw)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "postgres-exporter")); err != nil || len(entries) != 1 {
		t.Errorf("postgres-exporter directory holds %v (%v), want its password only", entries, err)
	}

	secretsRun(t, dir, nil)
	if got := readSecret(t, dir, "postgres-exporter", "postgres_exporter_db_password"); got != pw {
		t.Errorf("second run changed the exporter password to %q", got)
	}
	secretsRun(t, dir, map[string]string{"POSTGRES_EXPORTER_DB_PASSWORD": "chosen"})
	for _, d := range []string{"infra", "postgres-exporter"} {
		if got := readSecret(t, dir, d, "postgres_exporter_db_password"); got != "chosen" {
			t.Errorf("%s: exporter password %q after POSTGRES_EXPORTER_DB_PASSWORD=chosen", d, got)
		}
	}
}
