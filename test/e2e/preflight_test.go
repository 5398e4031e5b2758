package e2e

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/incumbent-io/incumbent/internal/tcpproxy"
)

// TestPreflightFailsClearlyWhenTheAPIServerIsAway points the sidecar at a
// proxy that swallows traffic (a hung API server) or refuses it (a down
// one): startup must fail within the preflight timeout, saying so, instead
// of hanging.
func TestPreflightFailsClearlyWhenTheAPIServerIsAway(t *testing.T) {
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := tcpproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cfg := rest.CopyConfig(env.Config)
	cfg.Host = "https://" + proxy.Addr()
	kc := filepath.Join(t.TempDir(), "proxied.kubeconfig")
	if err := writeKubeconfig(kc, cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode tcpproxy.Mode
		name string
		want string
	}{
		{tcpproxy.Blackhole, "hung", "preflight: no answer from the store at https://" + proxy.Addr() + " within 1s (--preflight-timeout)"},
		// Connections are accepted and closed at once; client-go retries
		// until the timeout and reports the last cause.
		{tcpproxy.Refuse, "down", "within 1s (--preflight-timeout): get lease default/pf: context deadline exceeded - error from a previous attempt: EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			proxy.Set(c.mode)
			code, _, errOut := runCLI(t, nil, "run", "--kubeconfig="+kc, "--lease=pf", "--http-addr=", "--preflight-timeout=1s")
			if code != 1 || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, errOut, c.want)
			}
		})
	}
}
