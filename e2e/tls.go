package e2e

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"

	"github.com/warrenhq/warren/shared/certs"
)

// WithTLS runs the system as deploy/compose.tls.yml runs it: RabbitMQ serves AMQPS on 5671
// only, PostgreSQL takes TLS sessions only (deploy/postgres/pg_hba.tls.conf), Mailpit
// requires STARTTLS, and every service connects with amqps://, sslmode=verify-full and
// SMTP_TLS=required, trusting a CA made for this system with shared/certs (the code of
// `warrenctl secrets init --tls`). Its certificates carry the network aliases the services
// dial and localhost, so the test process can use System.AMQPURL (amqps:// then) with
// System.CA. The management API stays plain HTTP, as in compose.
func WithTLS() Option { return func(o *options) { o.tls = &tlsSetup{} } }

// secretsDir is where the services find the CA, as in compose (their secrets volume).
const secretsDir = "/run/secrets/warren"

// tlsSetup is the CA and certificates of a system started WithTLS. A nil *tlsSetup (no
// WithTLS) changes nothing: each method then returns its plain default.
type tlsSetup struct {
	ca                    *certs.Authority
	rabbitCert, rabbitKey []byte
	pgCert, pgKey         []byte
	mailCert, mailKey     []byte
	// dir holds ca.crt for the services, bind-mounted read-only: their root file system
	// is read-only (hardened), so no file can be copied into them.
	dir string
	// rabbitConf and pgHBA are deploy/rabbitmq/tls.conf and deploy/postgres/pg_hba.tls.conf:
	// the compose stack's own files.
	rabbitConf, pgHBA []byte
}

// CA is the PEM certificate of the CA a system started WithTLS trusts; nil otherwise.
func (s *System) CA() []byte {
	if s.options.tls == nil {
		return nil
	}
	return s.options.tls.ca.CertPEM()
}

// prepare makes the CA and the servers' certificates, for brokerNodes broker nodes.
func (t *tlsSetup) prepare(brokerNodes int) (err error) {
	if t == nil {
		return nil
	}
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if t.rabbitConf, err = os.ReadFile(filepath.Join(root, "deploy", "rabbitmq", "tls.conf")); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if t.pgHBA, err = os.ReadFile(filepath.Join(root, "deploy", "postgres", "pg_hba.tls.conf")); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if t.ca, err = certs.NewAuthority("Warren e2e CA", certs.ServerValidity); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	local := []string{"localhost", "127.0.0.1"}
	rabbitNames := []string{brokerAlias}
	for i := range brokerNodes {
		rabbitNames = append(rabbitNames, fmt.Sprintf("rabbitmq-%d", i+1))
	}
	if t.rabbitCert, t.rabbitKey, err = t.ca.Issue(append(rabbitNames, local...), certs.ServerValidity); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if t.pgCert, t.pgKey, err = t.ca.Issue(append([]string{"postgres"}, local...), certs.ServerValidity); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if t.mailCert, t.mailKey, err = t.ca.Issue(append([]string{"mailpit"}, local...), certs.ServerValidity); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if t.dir, err = os.MkdirTemp("", "warren-e2e-tls-"); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	// Readable by the services' user (65532), like compose's secrets volumes.
	if err := os.Chmod(t.dir, 0o755); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return os.WriteFile(filepath.Join(t.dir, "ca.crt"), t.ca.CertPEM(), 0o644)
}

// cleanup removes the services' CA folder.
func (t *tlsSetup) cleanup() {
	if t != nil && t.dir != "" {
		_ = os.RemoveAll(t.dir)
	}
}

// amqp is the port and the scheme of the broker's AMQP listener.
func (t *tlsSetup) amqp() (port, scheme string) {
	if t == nil {
		return "5672/tcp", "amqp"
	}
	return "5671/tcp", "amqps"
}

func file(content []byte, path string, mode int64) testcontainers.ContainerFile {
	return testcontainers.ContainerFile{Reader: strings.NewReader(string(content)), ContainerFilePath: path, FileMode: mode}
}

// rabbitmq serves AMQPS with the compose stack's tls.conf, its plain listener off.
func (s *System) tlsRabbitMQ() testcontainers.CustomizeRequestOption {
	t := s.options.tls
	return func(req *testcontainers.GenericContainerRequest) error {
		if t == nil {
			return nil
		}
		if err := testcontainers.WithFiles(
			file(t.ca.CertPEM(), secretsDir+"/ca.crt", 0o644),
			file(t.rabbitCert, secretsDir+"/rabbitmq.crt", 0o644),
			// Read by the rabbitmq user; the files are copied as root.
			file(t.rabbitKey, secretsDir+"/rabbitmq.key", 0o644),
			file(t.rabbitConf, "/etc/rabbitmq/conf.d/90-tls.conf", 0o644),
		)(req); err != nil {
			return err
		}
		return s.publish("5671/tcp")(req)
	}
}

// tlsPostgres starts PostgreSQL as compose.tls.yml does: its key copied private to the
// postgres user by a root shell before the image's entrypoint, ssl=on, and the hostssl-only
// pg_hba.conf.
func (s *System) tlsPostgres() testcontainers.CustomizeRequestOption {
	t := s.options.tls
	return func(req *testcontainers.GenericContainerRequest) error {
		if t == nil {
			return nil
		}
		if err := testcontainers.WithFiles(
			file(t.pgCert, secretsDir+"/postgres.crt", 0o644),
			file(t.pgKey, secretsDir+"/postgres.key", 0o600),
			file(t.pgHBA, "/etc/warren/pg_hba.conf", 0o644),
		)(req); err != nil {
			return err
		}
		req.Entrypoint = []string{"sh", "-c",
			"install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/tls && " +
				"install -o postgres -g postgres -m 0600 " + secretsDir + "/postgres.key /var/lib/postgresql/tls/server.key && " +
				`exec docker-entrypoint.sh "$@"`, "sh"}
		if len(req.Cmd) == 0 {
			req.Cmd = []string{"postgres"}
		}
		req.Cmd = append(req.Cmd, "-c", "ssl=on", "-c", "ssl_cert_file="+secretsDir+"/postgres.crt",
			"-c", "ssl_key_file=/var/lib/postgresql/tls/server.key", "-c", "ssl_min_protocol_version=TLSv1.2",
			"-c", "hba_file=/etc/warren/pg_hba.conf")
		return nil
	}
}

// tlsMailpit makes Mailpit require STARTTLS with its certificate.
func (s *System) tlsMailpit() testcontainers.CustomizeRequestOption {
	t := s.options.tls
	return func(req *testcontainers.GenericContainerRequest) error {
		if t == nil {
			return nil
		}
		// The image is FROM scratch: /tmp is the one folder it is sure to have.
		if err := testcontainers.WithFiles(
			file(t.mailCert, "/tmp/mailpit.crt", 0o644),
			file(t.mailKey, "/tmp/mailpit.key", 0o600),
		)(req); err != nil {
			return err
		}
		return testcontainers.WithEnv(map[string]string{
			"MP_SMTP_TLS_CERT":         "/tmp/mailpit.crt",
			"MP_SMTP_TLS_KEY":          "/tmp/mailpit.key",
			"MP_SMTP_REQUIRE_STARTTLS": "true",
		})(req)
	}
}

// tlsServiceEnv is what a service's environment gains under TLS: the AMQPS URL, a database
// URL with sslmode=verify-full, the CA, and for email STARTTLS required.
func (s *System) tlsServiceEnv(name string) map[string]string {
	if s.options.tls == nil {
		return nil
	}
	ca := secretsDir + "/ca.crt"
	db := url.URL{Scheme: "postgres", User: url.UserPassword(name, name), Host: "postgres:5432", Path: "/" + name,
		RawQuery: url.Values{"sslmode": {"verify-full"}, "sslrootcert": {ca}}.Encode()}
	env := map[string]string{
		"AMQP_URL":     fmt.Sprintf("amqps://%s:%s@%s:5671/", brokerUser, brokerPassword, brokerAlias),
		"AMQP_CA_FILE": ca,
		"DATABASE_URL": db.String(),
	}
	if name == "email" {
		env["SMTP_TLS"], env["SMTP_CA_FILE"] = "required", ca
	}
	return env
}

// tlsService mounts the CA's folder into a service at secretsDir.
func (s *System) tlsService() testcontainers.CustomizeRequestOption {
	t := s.options.tls
	return func(req *testcontainers.GenericContainerRequest) error {
		if t == nil {
			return nil
		}
		return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Binds = append(hc.Binds, t.dir+":"+secretsDir+":ro")
		})(req)
	}
}
