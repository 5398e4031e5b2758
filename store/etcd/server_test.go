package etcd_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// etcdServer is a real etcd v3.6.16 member, the binary hack/testbin.sh
// builds, run as a child process on loopback ports. It can be killed and
// started again on the same data directory and ports.
type etcdServer struct {
	bin       string
	dataDir   string
	clientURL string
	args      []string

	mu     sync.Mutex // serializes Start, Kill and Stop
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited

	logMu sync.Mutex
	logs  []string // the last lines the server logged
}

// serverTLS names the files of a server that serves clients over TLS and
// checks their certificates.
type serverTLS struct {
	CertFile, KeyFile, CAFile string
}

// newEtcdServer prepares a single-member cluster in root on free loopback
// ports. It does not start it.
func newEtcdServer(root string, tls *serverTLS) (*etcdServer, error) {
	bins, err := testenv.Binaries()
	if err != nil {
		return nil, err
	}
	clientPort, err := freePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if tls != nil {
		scheme = "https"
	}
	s := &etcdServer{
		bin:       filepath.Join(bins, "etcd"),
		dataDir:   filepath.Join(root, "data"),
		clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, clientPort),
	}
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	s.args = []string{
		"--name", "member",
		"--data-dir", s.dataDir,
		"--listen-client-urls", s.clientURL,
		"--advertise-client-urls", s.clientURL,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "member=" + peerURL,
	}
	if tls != nil {
		s.args = append(s.args, "--cert-file", tls.CertFile, "--key-file", tls.KeyFile,
			"--trusted-ca-file", tls.CAFile, "--client-cert-auth")
	}
	return s, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Endpoint is the client URL.
func (s *etcdServer) Endpoint() string { return s.clientURL }

// Start starts the process and waits until it logs that it serves client
// requests (etcd's own readiness signal), for at most a minute.
func (s *etcdServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("etcd: already running")
	}
	cmd := exec.Command(s.bin, s.args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcd: start %s: %w", s.bin, err)
	}
	ready := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			s.log(line)
			if !seen && strings.Contains(line, `"msg":"ready to serve client requests"`) {
				seen = true
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	select {
	case <-ready:
		return nil
	case <-exited:
		s.cmd = nil
		return fmt.Errorf("etcd: exited before it was ready (%v):\n%s", cmd.ProcessState, s.tail())
	case <-timeout.C:
		_ = cmd.Process.Kill()
		<-exited
		s.cmd = nil
		return fmt.Errorf("etcd: not ready within a minute:\n%s", s.tail())
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (s *etcdServer) Kill() error { return s.halt(syscall.SIGKILL) }

// Stop ends the process with SIGTERM, as an orderly shutdown would, and
// waits for it (SIGKILL after 30 seconds).
func (s *etcdServer) Stop() error { return s.halt(syscall.SIGTERM) }

func (s *etcdServer) halt(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("etcd: signal %v: %w", sig, err)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case <-exited:
		return nil
	case <-timeout.C:
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("etcd: did not stop within 30s of %v:\n%s", sig, s.tail())
	}
}

func (s *etcdServer) log(line string) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.logs = append(s.logs, line)
	if len(s.logs) > 400 {
		s.logs = append(s.logs[:0], s.logs[len(s.logs)-200:]...)
	}
}

// tail returns the last lines logged.
func (s *etcdServer) tail() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	n := min(len(s.logs), 30)
	return strings.Join(s.logs[len(s.logs)-n:], "\n")
}
