package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of a TLS client configuration.
type TLSFiles struct {
	// CAFile is the authority that signed the server's certificate, when the system's
	// trust store does not hold it.
	CAFile string
	// CertFile and KeyFile are this client's certificate and key, for servers that
	// require one (mutual TLS). Both or neither.
	CertFile, KeyFile string
}

// ClientConfig loads the files into a TLS client configuration; with no files set it
// returns nil, which means the defaults (the system's trust store, no client certificate).
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	if f.CAFile == "" && f.CertFile == "" && f.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: %s holds no PEM certificate", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("tls: a client certificate needs both its certificate and its key file")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
