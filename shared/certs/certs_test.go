package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/certs"
)

// A certificate the CA issues is accepted by a Go TLS client that trusts the CA and dials
// one of its names, and refused for a name it does not carry.
func TestIssuedCertificateServesTLS(t *testing.T) {
	ca, err := certs.NewAuthority("warren test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue([]string{"rabbitmq", "localhost", "127.0.0.1"}, certs.ServerValidity)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	dial := func(serverName string) error {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: serverName})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, name := range []string{"rabbitmq", "localhost", "127.0.0.1"} {
		if err := dial(name); err != nil {
			t.Errorf("dial as %s: %v", name, err)
		}
	}
	if err := dial("postgres"); err == nil {
		t.Error("a certificate for rabbitmq was accepted for postgres")
	}

	// The server certificate never outlives its CA (an hour here).
	cert, _ := certs.ParseCertificate(certPEM)
	if cert.NotAfter.After(ca.Expires()) {
		t.Errorf("server certificate valid until %s, past its CA's %s", cert.NotAfter, ca.Expires())
	}
}

func TestCurrentTellsWhenToReissue(t *testing.T) {
	ca, err := certs.NewAuthority("warren test CA", certs.CAValidity)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"postgres", "localhost", "127.0.0.1"}
	certPEM, keyPEM, err := ca.Issue(names, certs.ServerValidity)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Current(certPEM, keyPEM, []string{"127.0.0.1", "localhost", "postgres"}, certs.RenewBefore) {
		t.Error("a fresh certificate for the same names (in another order) is not current")
	}
	_, otherKey, _ := ca.Issue(names, certs.ServerValidity)
	other, _ := certs.NewAuthority("another CA", certs.CAValidity)
	otherCert, otherCertKey, _ := other.Issue(names, certs.ServerValidity)
	short, shortKey, _ := ca.Issue(names, 10*24*time.Hour)
	for what, c := range map[string]struct {
		cert, key []byte
		names     []string
	}{
		"a name more":               {certPEM, keyPEM, append(names, "postgres-2")},
		"a name less":               {certPEM, keyPEM, names[:2]},
		"another certificate's key": {certPEM, otherKey, names},
		"another CA's":              {otherCert, otherCertKey, names},
		"expiring in 10 days":       {short, shortKey, names},
		"no certificate":            {nil, keyPEM, names},
		"no key":                    {certPEM, nil, names},
	} {
		if ca.Current(c.cert, c.key, c.names, certs.RenewBefore) {
			t.Errorf("%s: Current says keep it", what)
		}
	}

	// The CA survives a round trip through its files.
	again, err := certs.LoadAuthority(ca.CertPEM(), ca.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Current(certPEM, keyPEM, names, certs.RenewBefore) {
		t.Error("the reloaded CA does not recognise what it issued")
	}
	if _, err := certs.LoadAuthority(ca.CertPEM(), otherKey); err == nil {
		t.Error("LoadAuthority took a key that is not the CA's")
	}
}
