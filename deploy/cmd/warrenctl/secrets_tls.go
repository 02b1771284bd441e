package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/warrenhq/warren/shared/certs"
)

// TLS files of secrets init --tls. The CA's key has a directory (volume) of its own, which
// only secrets mounts: a broken-into broker or database could otherwise issue certificates
// for the others. Each server's key is in the volume of that server only (infra for the
// broker and the database, which already share it; mailpit for the mail catcher, which has
// no business with the passwords in infra). Every service gets the CA certificate.
const (
	caDir     = "ca"
	caFile    = "ca.crt"
	caKeyFile = "ca.key"
	mailDir   = "mailpit"
	// alertDir is Alertmanager's volume: the CA only, to check Mailpit's certificate.
	alertDir = "alertmanager"
)

// tls makes sure opts.Dir holds a CA and a current certificate for each server, and
// returns the CA certificate. The CA is kept across runs (its certificate is what clients
// trust) unless it is missing or within certs.RenewBefore of its expiry; a server's
// certificate is issued again when it is missing, not the CA's, for other names, or near
// its expiry. A server reads a new certificate when it (re)starts.
func (w *secretWriter) tls(opts SecretsOptions) []byte {
	ca := w.authority(filepath.Join(opts.Dir, caDir))
	if w.err != nil {
		return nil
	}
	infra := filepath.Join(opts.Dir, "infra")
	w.write(infra, caFile, string(ca.CertPEM()))
	w.serverCert(ca, infra, "rabbitmq", serverNames(opts.AMQPAddr))
	w.serverCert(ca, infra, "postgres", serverNames(opts.PostgresAddr))
	w.serverCert(ca, filepath.Join(opts.Dir, mailDir), "mailpit", serverNames(opts.SMTPHost))
	w.write(filepath.Join(opts.Dir, alertDir), caFile, string(ca.CertPEM()))
	return ca.CertPEM()
}

// serverNames are the names a server's certificate carries: the host the services reach it
// by, and localhost and 127.0.0.1 for a client on the Docker host going through the
// published port (compose publishes every port on 127.0.0.1 only).
func serverNames(addr string) []string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	names := []string{host}
	for _, n := range []string{"localhost", "127.0.0.1"} {
		if n != host {
			names = append(names, n)
		}
	}
	return names
}

// authority loads the CA of dir, or creates one when there is none or it is about to
// expire. A CA file that exists but does not load is an error, not a reason to replace
// it: an operator may have handed that CA to clients.
func (w *secretWriter) authority(dir string) *certs.Authority {
	certPEM, certErr := os.ReadFile(filepath.Join(dir, caFile))
	keyPEM, keyErr := os.ReadFile(filepath.Join(dir, caKeyFile))
	for _, err := range []error{certErr, keyErr} {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.err = fmt.Errorf("read CA: %w", err)
			return nil
		}
	}
	if certErr == nil && keyErr == nil {
		ca, err := certs.LoadAuthority(certPEM, keyPEM)
		if err != nil {
			w.err = fmt.Errorf("%s: %w (delete %s and %s to make a new CA)", dir, err, caFile, caKeyFile)
			return nil
		}
		if time.Until(ca.Expires()) > certs.RenewBefore {
			w.kept += 2
			return ca
		}
		w.logger.Warn("CA expires soon: making a new one; restart the servers and services to use it", "expires", ca.Expires())
	}
	ca, err := certs.NewAuthority("Warren CA", certs.CAValidity)
	if err != nil {
		w.err = err
		return nil
	}
	// The key first: a CA certificate without its key would stop the next run.
	w.writeMode(dir, caKeyFile, string(ca.KeyPEM()), 0o400)
	w.write(dir, caFile, string(ca.CertPEM()))
	return ca
}

// serverCert keeps dir/name.crt and dir/name.key if ca.Current says so, else issues them.
// The key is readable by every user like the passwords (the broker runs as its own user);
// PostgreSQL, which wants its key private to it, gets a copy at start (compose.tls.yml).
func (w *secretWriter) serverCert(ca *certs.Authority, dir, name string, names []string) {
	if w.err != nil {
		return
	}
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certPEM, _ := os.ReadFile(certPath)
	keyPEM, _ := os.ReadFile(keyPath)
	if ca.Current(certPEM, keyPEM, names, certs.RenewBefore) {
		w.kept += 2
		return
	}
	certPEM, keyPEM, err := ca.Issue(names, certs.ServerValidity)
	if err != nil {
		w.err = err
		return
	}
	w.write(dir, name+".key", string(keyPEM))
	w.write(dir, name+".crt", string(certPEM))
}
