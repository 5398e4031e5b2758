package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/incumbent-io/incumbent/store"
)

// DefaultDialTimeout is Config.DialTimeout when zero.
const DefaultDialTimeout = 5 * time.Second

// Keep-alive probes on the client's connection: a connection that stopped
// answering is noticed, and the watch moved to a new one, within about
// keepAliveTime + keepAliveTimeout. etcd refuses pings more frequent than
// every 5s by default.
const (
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 5 * time.Second
)

// reconnect paces the client's attempts to reconnect to a member that went
// away. gRPC's default backs off up to two minutes, which after a long etcd
// outage would keep the election leaderless that long after etcd is back;
// with at most a few clients per election, trying every two seconds at
// most costs nothing.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// Config describes how to reach an etcd cluster.
type Config struct {
	// Endpoints are the client URLs of the cluster's members, such as
	// "https://10.0.0.1:2379", or host:port pairs. All must use the same
	// scheme. At least one is required.
	Endpoints []string
	// CertFile and KeyFile hold the client's certificate and private key in
	// PEM, for clusters that check client certificates. Give both or
	// neither.
	CertFile, KeyFile string
	// CAFile holds the PEM certificates that sign the members' serving
	// certificates. Empty means the system's roots.
	CAFile string
	// Username and Password log in to a cluster with authentication
	// enabled. Give both or neither.
	Username, Password string
	// DialTimeout bounds the login (with Username) when the client is
	// created. The connection itself is made in the background: an
	// unreachable cluster shows as errors of the first requests. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration
}

// ErrUnreachable is wrapped by NewClient's error when the cluster did not
// answer in time (a login needs an answer): trying again later may work.
var ErrUnreachable = errors.New("etcd is unreachable")

// NewClient checks cfg and returns a client for the cluster, which the
// caller closes. TLS is used when any endpoint is https:// or any of
// CertFile, KeyFile and CAFile is given. Each error names the field or file
// at fault. A refused login wraps store.ErrPermission. The client logs
// nothing (the Store's errors carry what went wrong), probes its connection
// every 10s, and after losing a member tries to reconnect at least every 2s.
func NewClient(cfg Config) (*clientv3.Client, error) {
	secure, err := checkEndpoints(cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.DialTimeout < 0:
		return nil, fmt.Errorf("etcd client: DialTimeout must not be negative, got %v", cfg.DialTimeout)
	case cfg.DialTimeout == 0:
		cfg.DialTimeout = DefaultDialTimeout
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("etcd client: Username and Password must be given together")
	}
	useTLS := secure || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != ""
	if useTLS && !secure && hasScheme(cfg.Endpoints[0]) {
		return nil, fmt.Errorf("etcd client: TLS files are given but endpoint %q is http://; use https://", cfg.Endpoints[0])
	}
	var tlsConfig *tls.Config
	if useTLS {
		if tlsConfig, err = loadTLS(cfg); err != nil {
			return nil, err
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		TLS:                  tlsConfig,
		Username:             cfg.Username,
		Password:             cfg.Password,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(reconnect)},
		Logger:               zap.NewNop(),
	})
	if err != nil {
		if isPermission(err) {
			return nil, fmt.Errorf("etcd client: log in to %s as %q: %w: %w", strings.Join(cfg.Endpoints, ","), cfg.Username, store.ErrPermission, err)
		}
		return nil, fmt.Errorf("etcd client: connect to %s: %w: %w", strings.Join(cfg.Endpoints, ","), ErrUnreachable, err)
	}
	return c, nil
}

func hasScheme(endpoint string) bool { return strings.Contains(endpoint, "://") }

// checkEndpoints validates each endpoint and reports whether they use TLS.
func checkEndpoints(endpoints []string) (secure bool, err error) {
	if len(endpoints) == 0 {
		return false, errors.New("etcd client: at least one endpoint is required, e.g. https://127.0.0.1:2379")
	}
	scheme := ""
	for i, ep := range endpoints {
		hostport := ep
		s := ""
		if hasScheme(ep) {
			u, err := url.Parse(ep)
			if err != nil {
				return false, fmt.Errorf("etcd client: endpoint %q is not a URL: %w", ep, err)
			}
			s = u.Scheme
			if s != "http" && s != "https" {
				return false, fmt.Errorf("etcd client: endpoint %q: scheme must be http or https, not %q", ep, s)
			}
			if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				return false, fmt.Errorf("etcd client: endpoint %q must be scheme://host:port only", ep)
			}
			hostport = u.Host
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return false, fmt.Errorf("etcd client: endpoint %q needs a host and a port, e.g. https://127.0.0.1:2379: %w", ep, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false, fmt.Errorf("etcd client: endpoint %q: port %q is not a number from 1 to 65535", ep, port)
		}
		if host == "" {
			return false, fmt.Errorf("etcd client: endpoint %q has no host", ep)
		}
		if i > 0 && s != scheme {
			return false, fmt.Errorf("etcd client: endpoints %q and %q use different schemes", endpoints[0], ep)
		}
		scheme = s
	}
	return scheme == "https", nil
}

// loadTLS reads the certificate files named by cfg.
func loadTLS(cfg Config) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return nil, fmt.Errorf("etcd client: CertFile (%q) and KeyFile (%q) must be given together", cfg.CertFile, cfg.KeyFile)
	case cfg.CertFile != "":
		if err := readable("CertFile", cfg.CertFile); err != nil {
			return nil, err
		}
		if err := readable("KeyFile", cfg.KeyFile); err != nil {
			return nil, err
		}
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client: load client certificate %s with key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client: read CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd client: CAFile %s holds no PEM certificate", cfg.CAFile)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// readable checks that the file named by field can be read, so that the
// error names the field and the file.
func readable(field, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("etcd client: read %s: %w", field, err)
	}
	return f.Close()
}
