package etcd_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store/etcd"
)

func TestNewClientRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	ok := []string{"http://127.0.0.1:2379"}
	for _, tc := range []struct {
		name string
		cfg  etcd.Config
		says string
	}{
		{"no endpoints", etcd.Config{}, "at least one endpoint"},
		{"no port", etcd.Config{Endpoints: []string{"localhost"}}, `"localhost" needs a host and a port`},
		{"bad port", etcd.Config{Endpoints: []string{"http://127.0.0.1:99999"}}, `port "99999"`},
		{"named port", etcd.Config{Endpoints: []string{"127.0.0.1:etcd"}}, `port "etcd"`},
		{"no host", etcd.Config{Endpoints: []string{"http://:2379"}}, "has no host"},
		{"bad scheme", etcd.Config{Endpoints: []string{"ftp://127.0.0.1:2379"}}, `not "ftp"`},
		{"path", etcd.Config{Endpoints: []string{"http://127.0.0.1:2379/v3"}}, "scheme://host:port only"},
		{"mixed schemes", etcd.Config{Endpoints: []string{"http://127.0.0.1:2379", "https://127.0.0.1:2380"}}, "different schemes"},
		{"empty endpoint", etcd.Config{Endpoints: []string{""}}, "needs a host and a port"},
		{"negative timeout", etcd.Config{Endpoints: ok, DialTimeout: -time.Second}, "DialTimeout"},
		{"user without password", etcd.Config{Endpoints: ok, Username: "alice"}, "Username and Password"},
		{"TLS files over http", etcd.Config{Endpoints: ok, CAFile: notPEM}, "use https://"},
		{"cert without key", etcd.Config{Endpoints: []string{"https://127.0.0.1:2379"}, CertFile: notPEM}, "CertFile"},
		{"unreadable cert", etcd.Config{Endpoints: []string{"https://127.0.0.1:2379"}, CertFile: missing, KeyFile: missing}, "read CertFile: open " + missing},
		{"cert not PEM", etcd.Config{Endpoints: []string{"https://127.0.0.1:2379"}, CertFile: notPEM, KeyFile: notPEM}, "load client certificate " + notPEM},
		{"unreadable CA", etcd.Config{Endpoints: []string{"127.0.0.1:2379"}, CAFile: missing}, "read CAFile: open " + missing},
		{"CA not PEM", etcd.Config{Endpoints: []string{"127.0.0.1:2379"}, CAFile: notPEM}, "CAFile " + notPEM + " holds no PEM certificate"},
	} {
		c, err := etcd.NewClient(tc.cfg)
		if err == nil {
			c.Close()
			t.Errorf("%s: NewClient(%+v) succeeded, want an error saying %q", tc.name, tc.cfg, tc.says)
			continue
		}
		if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want it to say %q", tc.name, err, tc.says)
		}
	}
}

// A cluster that serves over TLS and checks client certificates is reached
// with the files named in Config; without a client certificate it refuses.
func TestNewClientWithTLS(t *testing.T) {
	dir := t.TempDir()
	files := writeCertificates(t, dir)
	srv := startServer(t, &serverTLS{CertFile: files.serverCert, KeyFile: files.serverKey, CAFile: files.ca})

	c := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}, CAFile: files.ca, CertFile: files.clientCert, KeyFile: files.clientKey})
	s, err := etcd.New(c, "", "tls")
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	rec, err := s.Create(ctx, held("a", 0))
	if err != nil {
		t.Fatalf("create over TLS: %v", err)
	}
	if got, err := s.Get(ctx); err != nil || !sameRecord(got, rec) {
		t.Fatalf("get over TLS: %+v, %v", got, err)
	}

	anonymous := newClient(t, etcd.Config{Endpoints: []string{srv.Endpoint()}, CAFile: files.ca, DialTimeout: time.Second})
	s, err = etcd.New(anonymous, "", "tls")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := s.Get(short); err == nil {
		t.Fatal("a client without a certificate could read")
	} else {
		t.Logf("without a client certificate: %v", err)
	}
}

type certFiles struct{ ca, serverCert, serverKey, clientCert, clientKey string }

// writeCertificates writes a CA, a serving certificate for 127.0.0.1 and a
// client certificate, all signed by the CA, in PEM.
func writeCertificates(t *testing.T, dir string) certFiles {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "incumbent test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	files := certFiles{ca: filepath.Join(dir, "ca.pem")}
	writePEM(t, files.ca, "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (certPath, keyPath string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, certPath, "CERTIFICATE", der)
		writePEM(t, keyPath, "EC PRIVATE KEY", keyDER)
		return certPath, keyPath
	}
	files.serverCert, files.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	files.clientCert, files.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return files
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
