package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/deploy/internal/demousers"
)

// SecretsOptions are the flags of secrets init.
type SecretsOptions struct {
	// Dir is where the secrets are written: Dir/infra for the broker and the database,
	// Dir/<service> for each service, Dir/hydra for Hydra, Dir/login for the login app and
	// Dir/grafana for Grafana, Dir/postgres-exporter for the PostgreSQL metrics exporter.
	Dir string
	// AMQPAddr and PostgresAddr are the host:port the services' URLs point at. AMQPAddr
	// defaults to rabbitmq:5672, or rabbitmq:5671 with TLS.
	AMQPAddr, PostgresAddr string
	// TLS also writes a CA and the servers' certificates, and makes the services' URLs
	// amqps:// and sslmode=verify-full (see secrets_tls.go).
	TLS bool
	// SMTPHost is the mail server's name in its certificate (with TLS).
	SMTPHost string
	// CAPath is where each service finds its CA file (its secrets volume's mount point):
	// the database URL's sslrootcert.
	CAPath string
}

func secretsFlags(c *Config, fs *flag.FlagSet) {
	fs.StringVar(&c.Secrets.Dir, "dir", "/secrets", "directory to write into: <dir>/infra, <dir>/<service>, <dir>/hydra, <dir>/login, <dir>/grafana and <dir>/postgres-exporter")
	fs.StringVar(&c.Secrets.AMQPAddr, "amqp-addr", "", "host:port of RabbitMQ in the services' AMQP URLs (default rabbitmq:5672, rabbitmq:5671 with --tls)")
	fs.StringVar(&c.Secrets.PostgresAddr, "postgres-addr", "postgres:5432", "host:port of PostgreSQL in the services' database URLs")
	fs.BoolVar(&c.Secrets.TLS, "tls", false, "also write a CA and certificates for rabbitmq, postgres and the mail server, and make the services' URLs amqps:// and sslmode=verify-full")
	fs.StringVar(&c.Secrets.SMTPHost, "smtp-host", "mailpit", "with --tls: the mail server's name in its certificate")
	fs.StringVar(&c.Secrets.CAPath, "ca-path", "/run/secrets/warren/"+caFile, "with --tls: where the services find the CA certificate (their secrets volume), for sslrootcert")
}

// Secret files. The infra ones are read by the broker, broker-setup and the database's
// init script; each service's directory holds only that service's two URLs.
const (
	adminPasswordFile    = "rabbitmq_admin_password"
	postgresPasswordFile = "postgres_password"
	amqpURLFile          = "amqp_url"
	databaseURLFile      = "database_url"
	// hydraDBPasswordFile is in infra, for the database's init script; Hydra itself
	// gets it inside the DSN of hydraConfigFile.
	hydraDBPasswordFile = "hydra_db_password"
	// hydraSystemSecretFile keeps Hydra's system secret, which encrypts what Hydra stores
	// and signs its cookies: it must survive every later run, or the stored keys are lost.
	hydraSystemSecretFile = "system_secret"
	// hydraConfigFile is the config file Hydra reads after deploy/hydra/hydra.yml (`-c`
	// twice): its dsn and secrets. JSON, which Hydra reads as well as YAML, so no value
	// needs YAML quoting. (Hydra's distroless image and Warren's stand-in have no shell
	// to assemble a DSN from files.)
	hydraConfigFile = "hydra.json"
	// grafanaAdminPasswordFile is Grafana's admin password (Dir/grafana), which Grafana
	// reads through GF_SECURITY_ADMIN_PASSWORD__FILE. Grafana stores it in its database on
	// the first start only: a changed file does not change the password of an existing
	// grafana-data volume.
	grafanaAdminPasswordFile = "admin_password"
	// exporterDir holds what the PostgreSQL exporter (Prometheus's view of the database)
	// needs: its role's password, and the CA with --tls. Nothing else: the role is
	// pg_monitor only, and the volume is mounted into the exporter alone.
	exporterDir = "postgres-exporter"
	// exporterDBPasswordFile is the exporter role's password, in infra for the database's
	// init script and in exporterDir for the exporter (DATA_SOURCE_PASS_FILE).
	exporterDBPasswordFile = "postgres_exporter_db_password"
)

// DBPasswordVar is the variable that holds service's database password.
func DBPasswordVar(service string) string {
	return strings.ToUpper(service) + "_DB_PASSWORD"
}

// secretsInit writes every password a deployment needs, so that no password is ever
// written in the repository: compose runs it first, into one volume for the
// infrastructure and one per service, each mounted only where it is needed.
//
// A password comes from its variable when set (RABBITMQ_ADMIN_PASSWORD, POSTGRES_PASSWORD,
// <SERVICE>_AMQP_PASSWORD, <SERVICE>_DB_PASSWORD, HYDRA_DB_PASSWORD, HYDRA_SYSTEM_SECRET,
// POSTGRES_EXPORTER_DB_PASSWORD, DEMO_<USER>_PASSWORD, GRAFANA_ADMIN_PASSWORD), else from its file of an earlier run, else it is generated. Keeping earlier files matters: the broker's and the database's
// volumes hold the passwords they were first given.
//
// With --tls it also keeps a CA and the servers' certificates (secrets_tls.go), gives every
// service the CA certificate, and writes URLs that insist on TLS.
func secretsInit(_ context.Context, inv *invocation) error {
	opts := inv.config.Secrets
	w := secretWriter{env: inv.environ, logger: inv.logger}
	infra := filepath.Join(opts.Dir, "infra")
	if opts.AMQPAddr == "" {
		opts.AMQPAddr = "rabbitmq:5672"
		if opts.TLS {
			opts.AMQPAddr = "rabbitmq:5671"
		}
	}
	var ca []byte // the CA certificate each service gets, with TLS
	if opts.TLS {
		ca = w.tls(opts)
	}
	w.password(infra, adminPasswordFile, "RABBITMQ_ADMIN_PASSWORD")
	w.password(infra, postgresPasswordFile, "POSTGRES_PASSWORD")
	for _, name := range brokeraccess.Names() {
		amqpPassword := w.password(infra, strings.ToLower(PasswordVar(name)), PasswordVar(name))
		dbPassword := w.password(infra, strings.ToLower(DBPasswordVar(name)), DBPasswordVar(name))
		amqpURL := url.URL{Scheme: "amqp", User: url.UserPassword(name, amqpPassword), Host: opts.AMQPAddr, Path: "/"}
		dbURL := url.URL{Scheme: "postgres", User: url.UserPassword(name, dbPassword), Host: opts.PostgresAddr,
			Path: "/" + name, RawQuery: "sslmode=disable"}
		dir := filepath.Join(opts.Dir, name)
		if opts.TLS {
			amqpURL.Scheme = "amqps"
			// verify-full: encrypted, and the server's certificate is checked against the
			// CA and the host name, not merely present (sslmode=require checks neither).
			dbURL.RawQuery = url.Values{"sslmode": {"verify-full"}, "sslrootcert": {opts.CAPath}}.Encode()
			w.write(dir, caFile, string(ca))
		}
		w.write(dir, amqpURLFile, amqpURL.String())
		w.write(dir, databaseURLFile, dbURL.String())
	}
	hydraDB := w.password(infra, hydraDBPasswordFile, "HYDRA_DB_PASSWORD")
	hydraDir := filepath.Join(opts.Dir, "hydra")
	hydraDSN := url.URL{Scheme: "postgres", User: url.UserPassword("hydra", hydraDB), Host: opts.PostgresAddr,
		Path: "/hydra", RawQuery: "sslmode=disable"}
	if opts.TLS {
		// Hydra is one more client of the database: the same CA in its volume, the same
		// verify-full (the TLS profile's pg_hba lets no session in without TLS).
		hydraDSN.RawQuery = url.Values{"sslmode": {"verify-full"}, "sslrootcert": {opts.CAPath}}.Encode()
		w.write(hydraDir, caFile, string(ca))
	}
	w.hydraConfig(hydraDir, hydraDSN, w.password(hydraDir, hydraSystemSecretFile, "HYDRA_SYSTEM_SECRET"))
	// The exporter's password goes in two volumes: infra, where the database's init script
	// creates the role with it, and the exporter's own, which reads it from a file.
	expDir := filepath.Join(opts.Dir, exporterDir)
	w.write(expDir, exporterDBPasswordFile, w.password(infra, exporterDBPasswordFile, "POSTGRES_EXPORTER_DB_PASSWORD"))
	if opts.TLS {
		// verify-full, like the services: the TLS profile's pg_hba refuses a session in
		// clear, and the exporter checks the server's certificate against this CA.
		w.write(expDir, caFile, string(ca))
	}
	w.demoUsers(filepath.Join(opts.Dir, "login"))
	w.password(filepath.Join(opts.Dir, "grafana"), grafanaAdminPasswordFile, "GRAFANA_ADMIN_PASSWORD")
	if w.err != nil {
		return w.err
	}
	fmt.Fprintf(inv.stdout, "secrets in %s: %d written, %d kept\n", opts.Dir, w.written, w.kept)
	return nil
}

// secretWriter writes secret files, keeping the first error.
type secretWriter struct {
	env           map[string]string
	logger        *slog.Logger
	written, kept int
	err           error
}

// password returns the password of dir/file: the variable's value if set (written to the
// file), else the file's, else a new one (written).
func (w *secretWriter) password(dir, file, variable string) string {
	if w.err != nil {
		return ""
	}
	if v := w.env[variable]; v != "" {
		w.write(dir, file, v)
		return v
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	switch {
	case err == nil && len(b) > 0:
		w.kept++
		return string(b)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		w.err = fmt.Errorf("read %s: %w", filepath.Join(dir, file), err)
		return ""
	}
	pw, err := newPassword()
	if err != nil {
		w.err = err
		return ""
	}
	w.write(dir, file, pw)
	return pw
}

// write writes value to dir/file unless it holds it already. The file is written whole
// under a temporary name and renamed, so a reader never sees half a secret. It is
// readable by every user: the services and the broker run as different users, and what
// guards a secret is that its volume is mounted only into the containers that need it.
func (w *secretWriter) write(dir, file, value string) { w.writeMode(dir, file, value, 0o444) }

// writeMode is write with the file's mode.
func (w *secretWriter) writeMode(dir, file, value string, mode os.FileMode) {
	if w.err != nil {
		return
	}
	path := filepath.Join(dir, file)
	if old, err := os.ReadFile(path); err == nil && string(old) == value {
		w.kept++
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.err = fmt.Errorf("secrets dir: %w", err)
		return
	}
	tmp, err := os.CreateTemp(dir, "."+file+".*")
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", path, err)
		return
	}
	_, err = tmp.WriteString(value)
	err = errors.Join(err, tmp.Chmod(mode), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		w.err = fmt.Errorf("write %s: %w", path, err)
		return
	}
	w.written++
	w.logger.Info("secret written", "file", path)
}

// hydraConfig writes Hydra's secret settings: its database and its system secret.
func (w *secretWriter) hydraConfig(dir string, dsn url.URL, systemSecret string) {
	if w.err != nil {
		return
	}
	b, err := json.MarshalIndent(map[string]any{
		"dsn":     dsn.String(),
		"secrets": map[string]any{"system": []string{systemSecret}},
	}, "", "  ")
	if err != nil {
		w.err = fmt.Errorf("hydra config: %w", err)
		return
	}
	w.write(dir, hydraConfigFile, string(b)+"\n")
}

// demoUsers writes the users file of the login app: Warren's demo users
// (demousers.Demo) and load-test customers (demousers.LoadTest) with their passwords, each from DEMO_<USER>_PASSWORD, else the file's
// of an earlier run, else a new one.
func (w *secretWriter) demoUsers(dir string) {
	if w.err != nil {
		return
	}
	path := filepath.Join(dir, demousers.FileName)
	var old demousers.File
	if _, err := os.Stat(path); err == nil {
		if old, err = demousers.Load(path); err != nil {
			w.err = err
			return
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		w.err = fmt.Errorf("users file: %w", err)
		return
	}
	users := append(demousers.Demo(), demousers.LoadTest()...)
	for i := range users {
		u := &users[i]
		if v := w.env[demousers.PasswordVar(u.Name)]; v != "" {
			u.Password = v
		} else if was, err := old.User(u.Name); err == nil {
			u.Password = was.Password
		} else if u.Password, err = newPassword(); err != nil {
			w.err = err
			return
		}
	}
	b, err := demousers.File{Users: users}.Marshal()
	if err != nil {
		w.err = err
		return
	}
	w.write(dir, demousers.FileName, string(b))
}

// newPassword returns 32 random URL-safe characters (192 bits): they go into URLs as they
// are.
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
