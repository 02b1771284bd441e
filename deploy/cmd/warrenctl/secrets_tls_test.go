package main

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
	"github.com/warrenhq/warren/shared/certs"
)

func secretsRunArgs(t *testing.T, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), append([]string{"secrets", "init"}, args...), map[string]string{}, &out, io.Discard); err != nil {
		t.Fatalf("secrets init %v: %v (%s)", args, err, out.String())
	}
}

// verifyServer checks that dir/name.crt is signed by caPEM for every host in hosts, and
// that dir/name.key is its key.
func verifyServer(t *testing.T, caPEM []byte, dir, name string, hosts ...string) *x509.Certificate {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	certPEM, keyPEM := readSecret(t, dir, name+".crt"), readSecret(t, dir, name+".key")
	cert, err := certs.ParseCertificate([]byte(certPEM))
	if err != nil {
		t.Fatalf("%s.crt: %v", name, err)
	}
	for _, host := range hosts {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("%s.crt for %s: %v", name, host, err)
		}
	}
	ca, _ := certs.LoadAuthority(caPEM, []byte(readSecret(t, filepath.Dir(dir), "ca", "ca.key")))
	if ca == nil || !ca.Current([]byte(certPEM), []byte(keyPEM), append(hosts, "127.0.0.1"), certs.RenewBefore) {
		t.Errorf("%s: the key is not the certificate's, or the names are not exactly %v", name, hosts)
	}
	return cert
}

// secrets init --tls: one CA, a certificate per server for the names the services use,
// each key only where its server reads it, the CA certificate for every service, URLs
// that insist on TLS; a second run keeps it all, and a new name reissues that one
// certificate only.
func TestSecretsInitTLS(t *testing.T) {
	dir := t.TempDir()
	secretsRunArgs(t, "--dir", dir, "--tls")

	caPEM := []byte(readSecret(t, dir, "ca", "ca.crt"))
	verifyServer(t, caPEM, filepath.Join(dir, "infra"), "rabbitmq", "rabbitmq", "localhost")
	verifyServer(t, caPEM, filepath.Join(dir, "infra"), "postgres", "postgres", "localhost")
	verifyServer(t, caPEM, filepath.Join(dir, "mailpit"), "mailpit", "mailpit", "localhost")
	if info, err := os.Stat(filepath.Join(dir, "ca", "ca.key")); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("ca.key: %v %v, want mode 0400", info, err)
	}
	// Keys: the CA's in ca/ only, the mail catcher's in mailpit/ only.
	for path := range snapshot(t, dir) {
		if base := filepath.Base(path); (base == "ca.key" && path != "ca/ca.key") || (base == "mailpit.key" && path != "mailpit/mailpit.key") {
			t.Errorf("%s exists: that key belongs elsewhere", path)
		}
	}
	for _, name := range brokeraccess.Names() {
		if got := readSecret(t, dir, name, "ca.crt"); got != string(caPEM) {
			t.Errorf("%s: ca.crt is not the CA's certificate", name)
		}
		amqpURL, err := url.Parse(readSecret(t, dir, name, "amqp_url"))
		if err != nil || amqpURL.Scheme != "amqps" || amqpURL.Host != "rabbitmq:5671" {
			t.Errorf("%s: amqp_url %v (%v), want amqps://…@rabbitmq:5671/", name, amqpURL.Redacted(), err)
		}
		dbURL, err := url.Parse(readSecret(t, dir, name, "database_url"))
		if err != nil {
			t.Fatal(err)
		}
		if q := dbURL.Query(); q.Get("sslmode") != "verify-full" || q.Get("sslrootcert") != "/run/secrets/warren/ca.crt" {
			t.Errorf("%s: database_url %s, want sslmode=verify-full with the CA file", name, dbURL.Redacted())
		}
	}

	// The exporter and Alertmanager (which mails through Mailpit) trust the CA too.
	for _, d := range []string{"postgres-exporter", "alertmanager"} {
		if got := readSecret(t, dir, d, "ca.crt"); got != string(caPEM) {
			t.Errorf("%s: ca.crt is not the CA's certificate", d)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "alertmanager")); err != nil || len(entries) != 1 {
		t.Errorf("alertmanager directory holds %v (%v), want ca.crt only", entries, err)
	}

	// A second run changes nothing.
	before := snapshot(t, dir)
	secretsRunArgs(t, "--dir", dir, "--tls")
	for path, content := range snapshot(t, dir) {
		if before[path] != content {
			t.Errorf("%s changed on a second run", path)
		}
	}

	// The database gets another name: its certificate (only) is reissued, by the same CA.
	secretsRunArgs(t, "--dir", dir, "--tls", "--postgres-addr", "db.internal:5432")
	after := snapshot(t, dir)
	verifyServer(t, caPEM, filepath.Join(dir, "infra"), "postgres", "db.internal", "localhost")
	for _, f := range []string{"ca/ca.crt", "ca/ca.key", "infra/rabbitmq.crt", "infra/rabbitmq.key", "mailpit/mailpit.crt"} {
		if before[f] != after[f] {
			t.Errorf("%s changed when only the database's name did", f)
		}
	}

	// Without --tls the URLs are plain again (the certificates stay, unused).
	secretsRunArgs(t, "--dir", dir)
	if u, _ := url.Parse(readSecret(t, dir, "order", "amqp_url")); u == nil || u.Scheme != "amqp" || u.Host != "rabbitmq:5672" {
		t.Errorf("without --tls: amqp_url %v", u)
	}
}

// A CA whose files do not load stops secrets init instead of being replaced behind the
// operator's back.
func TestSecretsInitTLSRefusesABrokenCA(t *testing.T) {
	dir := t.TempDir()
	secretsRunArgs(t, "--dir", dir, "--tls")
	if err := os.Chmod(filepath.Join(dir, "ca", "ca.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca", "ca.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(t.Context(), []string{"secrets", "init", "--dir", dir, "--tls"}, map[string]string{}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("secrets init accepted a CA whose key does not load")
	}
}

// snapshot maps every file under dir (relative path) to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
