package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// DefaultControlAddr is where the control endpoint listens unless told
// otherwise: loopback, apart from the status API, so that neither probes
// nor other pods reach it.
const DefaultControlAddr = "127.0.0.1:4041"

// checkControlAddr accepts "", unix:PATH, or HOST:PORT with a loopback host
// (127.0.0.0/8, ::1 or localhost): the endpoint acts on the sidecar, so it
// must not be reachable from outside the pod.
func checkControlAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return fmt.Errorf("invalid --control-addr %q: unix: needs a socket path", addr)
		}
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid --control-addr %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("invalid --control-addr %q: it must be a loopback address (127.0.0.1:PORT, [::1]:PORT) or unix:PATH, since it acts on the sidecar and must not be reachable from outside the pod", addr)
	}
	return nil
}

// listenControl listens on a checked control address. A Unix socket left
// over by an earlier run is replaced, but not one another process still
// serves. The socket is made readable and writable by everyone who can
// reach its folder (an application container may run as another user): put
// it in a folder only the pod's containers share.
func listenControl(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is served by another process", path)
		}
		_ = os.Remove(path) // nobody answers: left over
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("make %s reachable: %w", path, err)
	}
	return ln, nil
}

// controlClient returns an HTTP client for the control endpoint at addr,
// and the base URL of its requests.
func controlClient(addr string, timeout time.Duration) (*http.Client, string) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dial}}, "http://incumbent"
	}
	return &http.Client{Timeout: timeout}, "http://" + addr
}
