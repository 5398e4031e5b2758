package e2e

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/tcpproxy"
)

// TestStartupWaitsForTheAPIServer points the sidecar at a proxy that
// swallows traffic (a hung API server) or refuses it (a down one). The
// health endpoints answer from the first moment, saying what the sidecar
// waits for (a startup probe sees it alive, and why it is not ready); the
// log says so before any probe could fire; the sidecar keeps trying, with
// backoff, past the old preflight timeout, instead of exiting into a
// CrashLoopBackOff; and once the API server answers it leads.
func TestStartupWaitsForTheAPIServer(t *testing.T) {
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode tcpproxy.Mode
		name string
	}{{tcpproxy.Blackhole, "hung"}, {tcpproxy.Refuse, "down"}} {
		t.Run(c.name, func(t *testing.T) {
			proxy, err := tcpproxy.Start(u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			proxy.Set(c.mode)
			cfg := rest.CopyConfig(env.Config)
			cfg.Host = "https://" + proxy.Addr()
			kc := filepath.Join(t.TempDir(), "proxied.kubeconfig")
			if err := writeKubeconfig(kc, cfg); err != nil {
				t.Fatal(err)
			}
			lease := "startup-" + c.name
			// --preflight-timeout was the old bound after which startup
			// gave up; it must no longer end the process.
			p := start(t, lease, nil, append([]string{"run", "--kubeconfig=" + kc, "-n", "default", "--lease=" + lease,
				"--identity=" + lease, "--http-addr=127.0.0.1:0", "--log-format=json", "--preflight-timeout=1s"}, fastTimings...)...)
			addr := p.statusAddr()
			p.waitLog("why it waits", func(l map[string]any) bool {
				return strings.HasPrefix(l["msg"].(string), "waiting for the API server")
			})
			if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 || !strings.Contains(body, "waiting for the API server") {
				t.Errorf("/healthz while waiting: %d %q; want 200 saying what it waits for", code, body)
			}
			if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, "waiting for the API server") {
				t.Errorf("/readyz while waiting: %d %q; want 503 saying what it waits for", code, body)
			}
			// Still trying after the old timeout: a second attempt fails too.
			p.waitLogs("a second attempt", 2, func(l map[string]any) bool {
				return strings.HasPrefix(l["msg"].(string), "waiting for the API server")
			})
			proxy.Set(tcpproxy.Pass)
			p.waitLog("leadership once the API server answers", msg("started leading"))
			if code, _ := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
				t.Errorf("/readyz once running: %d; want 200", code)
			}
			p.signal(syscall.SIGTERM)
			if code := p.wait(); code != 0 {
				t.Errorf("exit %d after SIGTERM; want 0", code)
			}
		})
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A configuration error found at startup (the pod to label does not exist)
// ends the sidecar with exit 2 and says what to fix. (A refused permission
// is waited for, or ends it with exit 3 under --on-refused=exit: see
// refused_test.go.)
func TestStartupErrorsExitWithTheirCode(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing pod", []string{"--label-pod", "--pod=no-such-pod"}, 2, "set POD_NAME from the downward API"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"run", "--kubeconfig=" + kubeconfig, "-n", "default", "--lease=startup-" + strings.ReplaceAll(c.name, " ", "-"),
				"--identity=x", "--http-addr=", "--log-format=json"}, c.args...)
			p := start(t, c.name, nil, args...)
			if code := p.wait(); code != c.code {
				t.Errorf("exit %d; want %d", code, c.code)
			}
			p.waitLog("the fatal error", func(l map[string]any) bool {
				s, _ := l["err"].(string)
				return l["msg"] == "incumbent failed" && strings.Contains(s, c.want)
			})
		})
	}
}
