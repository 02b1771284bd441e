// Package certs is a small certificate authority for Warren's own TLS: one CA, and server
// certificates for the broker, the database and the mail catcher, with the DNS names the
// services reach them by. `warrenctl secrets init --tls` keeps its files in the secrets
// volumes; the e2e suite issues a fresh set for each system. Standard library only, so
// that every module (the deploy tools, the e2e suite, test kits) can import it.
//
// Keys are ECDSA P-256, which RabbitMQ (Erlang/OTP), PostgreSQL (OpenSSL), Go and Mailpit
// all accept, and which is much faster to generate than RSA. Everything is PEM: the CA
// and server certificates as "CERTIFICATE", keys as PKCS #8 "PRIVATE KEY".
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Default lifetimes. A private CA gets no benefit from short lives the way a public one
// does (nobody else trusts it, and it is replaced by deleting its files); ten years means
// a deployment never meets its expiry. Server certificates live two years and are
// reissued by Current once fewer than RenewBefore remain.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	RenewBefore    = 30 * 24 * time.Hour
)

// ErrNotPEM is returned for a file that holds no PEM block of the expected type.
var ErrNotPEM = errors.New("certs: no PEM block of the expected type")

// Authority is a CA that can sign server certificates.
type Authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// NewAuthority generates a self-signed CA named name, valid for validity from now.
func NewAuthority(name string, validity time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		// An hour back: a container whose clock is a little behind still accepts it.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// It signs server certificates only, never another CA.
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	return LoadAuthority(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM)
}

// LoadAuthority reads a CA from its PEM certificate and key, as CertPEM and KeyPEM wrote
// them. It fails when the key is not the certificate's or the certificate is not a CA's.
func LoadAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load authority: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("load authority: the certificate is not a CA's")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load authority: %w", err)
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, errors.New("load authority: the key is not the certificate's")
	}
	return &Authority{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// CertPEM is the CA's certificate: what every client is given to trust.
func (a *Authority) CertPEM() []byte { return slices.Clone(a.certPEM) }

// KeyPEM is the CA's private key: keep it where only the issuer reads it.
func (a *Authority) KeyPEM() []byte { return slices.Clone(a.keyPEM) }

// Expires is when the CA's certificate stops being valid.
func (a *Authority) Expires() time.Time { return a.cert.NotAfter }

// Issue returns a new server certificate for names (DNS names, or IP addresses written as
// such), valid for validity from now but never past the CA, with its own new key. The
// first name is also its common name.
func (a *Authority) Issue(names []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("issue: no name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", names[0], err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", names[0], err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(a.cert.NotAfter) {
		tmpl.NotAfter = a.cert.NotAfter // clients would refuse the part past it anyway
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", names[0], err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s: %w", names[0], err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// Current reports whether certPEM and keyPEM are a server certificate and its key that can
// stay in use: signed by a, for exactly names (in any order), a server certificate, and
// valid for more than renewBefore from now. Anything else (missing, unreadable, another
// CA's, other names, nearly expired) calls for a new one.
func (a *Authority) Current(certPEM, keyPEM []byte, names []string, renewBefore time.Duration) bool {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return false
	}
	key, err := parseKey(keyPEM)
	if err != nil || !samePublicKey(cert.PublicKey, key.Public()) {
		return false
	}
	if cert.CheckSignatureFrom(a.cert) != nil || time.Until(cert.NotAfter) <= renewBefore {
		return false
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return false
	}
	have := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(names))
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			n = ip.String()
		}
		want = append(want, n)
	}
	slices.Sort(have)
	slices.Sort(want)
	return slices.Equal(slices.Compact(have), slices.Compact(want))
}

// ParseCertificate parses the first certificate of a PEM file.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, ErrNotPEM
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, ErrNotPEM
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: a %T cannot sign", key)
	}
	return signer, nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// newSerial is a random 128-bit serial number: two certificates of one CA must never
// share one, and a CA made again from nothing has no memory of the serials it used.
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}
