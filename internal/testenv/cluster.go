package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// Bounds of the cluster's own waits.
const (
	clusterReadyTimeout = 90 * time.Second // a server becoming ready after start
	clusterStopTimeout  = 60 * time.Second // a server exiting after SIGTERM
)

// Cluster is a kube-apiserver and its etcd run as plain processes on fixed
// loopback ports, chosen once, with their state in one folder: unlike
// envtest's, either server can be stopped and started again in place, and
// clients (which keep the same address, token and CA) reconnect to the same
// data. Each process is in a process group of its own and receives SIGKILL
// if the test process dies, so none outlives the test.
type Cluster struct {
	dir, bins string
	// Ports on 127.0.0.1.
	etcdPort, peerPort, apiPort int
	token                       string
	caData                      []byte // the API server's self-signed certificate (leaf and CA)

	mu        sync.Mutex
	etcd, api *serverProc
	stopped   bool
}

// StartCluster starts etcd and kube-apiserver, from the folder Binaries
// returns, with their data, certificates, keys and logs (etcd.log,
// kube-apiserver.log) under dir, which is created if missing and should be
// empty. It returns once the API server's /readyz answers ok, or an error
// (with the tail of the failing server's log) after a bounded wait.
func StartCluster(dir string) (*Cluster, error) {
	if dir == "" {
		return nil, errors.New("testenv: StartCluster: the folder path is empty")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testenv: StartCluster: %w", err)
	}
	bins, err := Binaries()
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"etcd-data", "apiserver-certs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("testenv: StartCluster: %w", err)
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("testenv: StartCluster: choose ports: %w", err)
	}
	c := &Cluster{dir: dir, bins: bins, etcdPort: ports[0], peerPort: ports[1], apiPort: ports[2]}
	if err := c.writeCredentials(); err != nil {
		return nil, fmt.Errorf("testenv: StartCluster: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.startEtcd(); err != nil {
		c.stopLocked()
		return nil, err
	}
	if err := c.startAPIServer(); err != nil {
		c.stopLocked()
		return nil, err
	}
	return c, nil
}

// writeCredentials writes the service-account signing key and the token
// file with one administrator (group system:masters).
func (c *Cluster) writeCredentials() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate the service-account key: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	if err := os.WriteFile(c.saKeyFile(), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("write the service-account key: %w", err)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("generate the admin token: %w", err)
	}
	c.token = hex.EncodeToString(b)
	line := fmt.Sprintf("%s,admin,admin,\"system:masters\"\n", c.token)
	if err := os.WriteFile(c.tokenFile(), []byte(line), 0o600); err != nil {
		return fmt.Errorf("write the token file: %w", err)
	}
	return nil
}

func (c *Cluster) saKeyFile() string   { return filepath.Join(c.dir, "service-account.key") }
func (c *Cluster) tokenFile() string   { return filepath.Join(c.dir, "tokens.csv") }
func (c *Cluster) certDir() string     { return filepath.Join(c.dir, "apiserver-certs") }
func (c *Cluster) etcdURL() string     { return "http://127.0.0.1:" + strconv.Itoa(c.etcdPort) }
func (c *Cluster) peerURL() string     { return "http://127.0.0.1:" + strconv.Itoa(c.peerPort) }
func (c *Cluster) servingCert() string { return filepath.Join(c.certDir(), "apiserver.crt") }

// APIServerAddr is the API server's host:port on loopback; it never changes.
func (c *Cluster) APIServerAddr() string { return "127.0.0.1:" + strconv.Itoa(c.apiPort) }

// EtcdEndpoint is the client URL of the cluster's etcd, for tests of the
// etcd backend (the API server keeps its own keys under /registry).
func (c *Cluster) EtcdEndpoint() string { return c.etcdURL() }

// Config returns a new administrator's client configuration: bearer token,
// TLS verified against the API server's self-signed certificate (kept in
// its cert folder, so it stays valid across restarts).
func (c *Cluster) Config() *rest.Config {
	return &rest.Config{
		Host:            "https://" + c.APIServerAddr(),
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), c.caData...)},
	}
}

// RestartAPIServer stops kube-apiserver with SIGTERM, waits for it to exit
// (SIGKILL after a bounded wait), starts it again on the same port with the
// same certificate, and waits until it is ready.
func (c *Cluster) RestartAPIServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("testenv: RestartAPIServer: the cluster is stopped")
	}
	// A server that had to be killed is gone all the same: start it again,
	// so that the cluster stays usable, and report the slow stop.
	stopErr := c.api.stop()
	if err := c.startAPIServer(); err != nil {
		return errors.Join(err, stopErr)
	}
	if stopErr != nil {
		return fmt.Errorf("testenv: RestartAPIServer: %w", stopErr)
	}
	return nil
}

// RestartEtcd stops etcd with SIGTERM, waits for it to exit (SIGKILL after a
// bounded wait), starts it again on the same ports with the same data, and
// waits until both etcd and the API server are ready.
func (c *Cluster) RestartEtcd() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("testenv: RestartEtcd: the cluster is stopped")
	}
	stopErr := c.etcd.stop() // as in RestartAPIServer
	if err := c.startEtcd(); err != nil {
		return errors.Join(err, stopErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.waitAPIReady(ctx); err != nil {
		return errors.Join(fmt.Errorf("testenv: RestartEtcd: the API server is not ready again: %w%s", err, c.api.logTail()), stopErr)
	}
	if stopErr != nil {
		return fmt.Errorf("testenv: RestartEtcd: %w", stopErr)
	}
	return nil
}

// Stop stops the API server, then etcd, and leaves dir in place. It may be
// called more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked()
}

func (c *Cluster) stopLocked() error {
	c.stopped = true
	var errs []error
	for _, p := range []*serverProc{c.api, c.etcd} {
		if p != nil {
			if err := p.stop(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testenv: stop the cluster: %w", err)
	}
	return nil
}

func (c *Cluster) startEtcd() error {
	args := []string{
		"--name=default",
		"--data-dir=" + filepath.Join(c.dir, "etcd-data"),
		"--listen-client-urls=" + c.etcdURL(),
		"--advertise-client-urls=" + c.etcdURL(),
		"--listen-peer-urls=" + c.peerURL(),
		"--initial-advertise-peer-urls=" + c.peerURL(),
		"--initial-cluster=default=" + c.peerURL(),
		"--unsafe-no-fsync=true", // test data; every stop is graceful
	}
	p, err := startServer("etcd", filepath.Join(c.bins, "etcd"), args, filepath.Join(c.dir, "etcd.log"))
	if err != nil {
		return err
	}
	c.etcd = p
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.waitEtcdReady(ctx); err != nil {
		return fmt.Errorf("testenv: etcd on %s is not ready: %w%s", c.etcdURL(), err, p.logTail())
	}
	return nil
}

func (c *Cluster) startAPIServer() error {
	args := []string{
		"--etcd-servers=" + c.etcdURL(),
		"--cert-dir=" + c.certDir(),
		"--secure-port=" + strconv.Itoa(c.apiPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--service-account-issuer=https://" + c.APIServerAddr(),
		"--service-account-key-file=" + c.saKeyFile(),
		"--service-account-signing-key-file=" + c.saKeyFile(),
		"--token-auth-file=" + c.tokenFile(),
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		// Without it, open watches hold SIGTERM up for the 60s shutdown
		// timeout: every client of an election watches.
		"--shutdown-watch-termination-grace-period=1s",
	}
	p, err := startServer("kube-apiserver", filepath.Join(c.bins, "kube-apiserver"), args, filepath.Join(c.dir, "kube-apiserver.log"))
	if err != nil {
		return err
	}
	c.api = p
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.waitAPIReady(ctx); err != nil {
		return fmt.Errorf("testenv: kube-apiserver on %s is not ready: %w%s", c.APIServerAddr(), err, p.logTail())
	}
	return nil
}

// waitEtcdReady polls etcd's /health until it reports healthy.
func (c *Cluster) waitEtcdReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, c.etcd, func() error {
		resp, err := client.Get(c.etcdURL() + "/health")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var h struct {
			Health string `json:"health"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return fmt.Errorf("/health: %w", err)
		}
		if h.Health != "true" {
			return fmt.Errorf("/health: %q", h.Health)
		}
		return nil
	})
}

// waitAPIReady polls the API server's /readyz until it answers ok. On the
// first start it also waits for the self-signed certificate to be written,
// and keeps it for Config; it is written only then, before StartCluster
// returns.
func (c *Cluster) waitAPIReady(ctx context.Context) error {
	var client *http.Client
	return poll(ctx, c.api, func() error {
		if client == nil {
			certPEM, err := os.ReadFile(c.servingCert())
			if err != nil {
				return fmt.Errorf("serving certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(certPEM) {
				return fmt.Errorf("serving certificate %s: no certificate in it yet", c.servingCert())
			}
			client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			if c.caData == nil { // the first start; later ones reuse the same files
				c.caData = certPEM
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+c.APIServerAddr()+"/readyz", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s: %s", resp.Status, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// poll calls check every 100ms until it succeeds, p exits, or ctx ends.
func poll(ctx context.Context, p *serverProc, check func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready within the deadline; last check: %w", err)
		case <-p.exited:
			return fmt.Errorf("%s exited: %v", p.name, p.waitErr)
		case <-tick.C:
		}
	}
}

// serverProc is one run of a server binary.
type serverProc struct {
	name, log string
	pid       int
	exited    chan struct{}
	waitErr   error // set before exited is closed
}

// startServer starts bin with args, its output appended to logPath, in a
// process group of its own, with SIGKILL as its parent-death signal. The
// forking goroutine keeps its OS thread until the process exits, because
// Linux sends the parent-death signal when that thread ends.
func startServer(name, bin string, args []string, logPath string) (*serverProc, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s log: %w", name, err)
	}
	fmt.Fprintf(logf, "\n===== %s starting at %s: %s %s\n", name, time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p := &serverProc{name: name, log: logPath, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer logf.Close()
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", name, err)
	}
	return p, nil
}

// stop sends SIGTERM to the process group and waits for the process to
// exit, sending SIGKILL after clusterStopTimeout. An exit caused by the
// SIGTERM is not an error.
func (p *serverProc) stop() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	timer := time.NewTimer(clusterStopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
	return fmt.Errorf("%s (pid %d) did not exit within %v of SIGTERM and was killed%s", p.name, p.pid, clusterStopTimeout, p.logTail())
}

// logTail returns the last lines of the process's log, for error messages.
func (p *serverProc) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n--- last lines of " + p.log + ":\n" + strings.Join(lines, "\n")
}

// FreePorts returns n distinct free ports on 127.0.0.1 below the kernel's
// ephemeral range, for servers a test starts and may restart in place (the
// real-node tier's cluster uses it too).
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// freePorts returns n distinct free ports on 127.0.0.1 below the kernel's
// ephemeral range, so that no outgoing connection takes one of them while
// its server is down for a restart.
func freePorts(n int) ([]int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 21000 {
				low = v
			}
		}
	}
	const base = 20000
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 200 {
			return nil, fmt.Errorf("no %d free ports in [%d, %d) after %d tries", n, base, low, tries)
		}
		r, err := rand.Int(rand.Reader, big.NewInt(int64(low-base)))
		if err != nil {
			return nil, err
		}
		port := base + int(r.Int64())
		if seen[port] {
			continue
		}
		seen[port] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, port)
	}
	return ports, nil
}
