package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/internal/statusapi"
)

// sidecar starts `incumbent run` for lease with the admin kubeconfig, a
// status API on a free loopback port and fast timings.
func sidecar(t *testing.T, lease, identity string, extraEnv []string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"run", "--kubeconfig=" + kubeconfig, "-n", "default", "--lease=" + lease,
		"--identity=" + identity, "--http-addr=127.0.0.1:0", "--log-format=json", "--log-level=debug"}, fastTimings...)
	return start(t, identity, extraEnv, append(args, extra...)...)
}

func getJSON(t *testing.T, url string, into any) int {
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
	if into != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("GET %s: %v in %q", url, err, b)
		}
	}
	return resp.StatusCode
}

func viewOf(t *testing.T, addr string) statusapi.View {
	t.Helper()
	var v statusapi.View
	if code := getJSON(t, "http://"+addr+"/v1/status", &v); code != 200 {
		t.Fatalf("/v1/status on %s: %d", addr, code)
	}
	return v
}

// sse reads the data lines of a /v1/watch stream.
func sse(t *testing.T, addr string) (<-chan statusapi.View, func()) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+"/v1/watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("/v1/watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan statusapi.View, 64)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var v statusapi.View
				if json.Unmarshal([]byte(data), &v) == nil {
					out <- v
				}
			}
		}
	}()
	return out, func() { resp.Body.Close() }
}

func nextView(t *testing.T, ch <-chan statusapi.View) statusapi.View {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatal("the watch stream ended")
		}
		return v
	case <-time.After(wait):
		t.Fatal("no watch event")
	}
	return statusapi.View{}
}

// TestStatusAPIAndWatch runs two sidecars: the status API of each must
// agree on the leader, the SSE stream must deliver the current state at once
// and the hand-over after the leader's SIGTERM, and the leader must exit 0
// having released the lease.
func TestStatusAPIAndWatch(t *testing.T) {
	a := sidecar(t, "api", "api-a", nil)
	aAddr := a.statusAddr()
	a.waitLog("api-a leading", msg("started leading"))
	b := sidecar(t, "api", "api-b", nil)
	bAddr := b.statusAddr()
	eventually(t, "api-b sees api-a leading", func() (bool, string) {
		v := viewOf(t, bAddr)
		return v.Known && v.Leader == "api-a", jsonString(v)
	})

	b.waitLog("the follower naming who leads", func(l map[string]any) bool { return l["msg"] == "following" && l["leader"] == "api-a" })
	va, vb := viewOf(t, aAddr), viewOf(t, bAddr)
	if !va.IsLeader || vb.IsLeader || va.Leader != "api-a" || va.Lease != "api" || va.Namespace != "default" ||
		va.Identity != "api-a" || vb.Identity != "api-b" || va.LeaseDurationSeconds != 3 || va.RenewedAt == nil {
		t.Errorf("statuses: a %s, b %s", jsonString(va), jsonString(vb))
	}
	var contrib statusapi.Contrib
	if code := getJSON(t, "http://"+bAddr+"/", &contrib); code != 200 || contrib.Name != "api-a" {
		t.Errorf("GET / on the follower: %d %+v", code, contrib)
	}
	if code := getJSON(t, "http://"+aAddr+"/readyz/leader", nil); code != 200 {
		t.Errorf("/readyz/leader on the leader: %d", code)
	}
	if code := getJSON(t, "http://"+bAddr+"/readyz/leader", nil); code != 503 {
		t.Errorf("/readyz/leader on the follower: %d", code)
	}
	for _, addr := range []string{aAddr, bAddr} {
		if code := getJSON(t, "http://"+addr+"/healthz", nil); code != 200 {
			t.Errorf("/healthz on %s: %d", addr, code)
		}
	}
	metrics := httpBody(t, "http://"+aAddr+"/metrics")
	for _, want := range []string{`incumbent_is_leader{lease="default/api"} 1`, `incumbent_terms_total{lease="default/api"} 1`,
		"incumbent_renew_duration_seconds_count", "incumbent_acquire_duration_seconds_count", "process_resident_memory_bytes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("leader metrics lack %q", want)
		}
	}
	if !strings.Contains(httpBody(t, "http://"+bAddr+"/metrics"), `incumbent_is_leader{lease="default/api"} 0`) {
		t.Error("follower metrics do not say is_leader 0")
	}

	// The operator's view agrees.
	code, out, errOut := runCLI(t, nil, "status", "--kubeconfig="+kubeconfig, "-n", "default", "--lease=api", "-o", "json")
	var st struct {
		Holder           string   `json:"holder"`
		Term             int64    `json:"term"`
		ExpiresInSeconds *float64 `json:"expiresInSeconds"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Holder != "api-a" || st.Term != va.Term || st.ExpiresInSeconds == nil {
		t.Errorf("incumbent status -o json: exit %d, %q %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, nil, "status", "--kubeconfig="+kubeconfig, "-n", "default", "--lease=api")
	if code != 0 || !strings.Contains(out, "HOLDER") || !strings.Contains(out, "default/api  api-a") {
		t.Errorf("incumbent status: exit %d:\n%s", code, out)
	}
	watcher := start(t, "watch", nil, "watch", "--kubeconfig="+kubeconfig, "-n", "default", "--lease=api", "-o", "json")
	eventually(t, "incumbent watch reports api-a", func() (bool, string) {
		return strings.Contains(watcher.output(), `"leader":"api-a"`), watcher.output()
	})

	events, closeStream := sse(t, bAddr)
	defer closeStream()
	first := nextView(t, events)
	if first.Leader != "api-a" || first.IsLeader {
		t.Fatalf("first SSE event: %s", jsonString(first))
	}

	sent := time.Now()
	a.signal(syscall.SIGTERM)
	// A known term never goes backwards (0: not known, as for a free
	// lease, or a new holder that has not recorded its term yet).
	for v := first; !v.IsLeader; v = nextView(t, events) {
		if v.Term != 0 && v.Term < first.Term {
			t.Fatalf("term went backwards on the stream: %s after %s", jsonString(v), jsonString(first))
		}
	}
	t.Logf("status API hand-over: api-a SIGTERM → api-b's stream says isLeader in %v", time.Since(sent).Round(time.Millisecond))
	if code := a.wait(); code != 0 {
		t.Errorf("api-a exited %d after SIGTERM, want 0", code)
	}
	a.waitLog("the release", msg("released the lease"))
	if v := viewOf(t, bAddr); !v.IsLeader || v.Term <= first.Term {
		t.Errorf("after the hand-over: %s", jsonString(v))
	}

	eventually(t, "incumbent watch reports api-b", func() (bool, string) {
		return strings.Contains(watcher.output(), `"leader":"api-b"`), watcher.output()
	})
	watcher.signal(syscall.SIGINT)
	if code := watcher.wait(); code != 0 {
		t.Errorf("incumbent watch exited %d after SIGINT", code)
	}
	b.signal(syscall.SIGTERM)
	if code := b.wait(); code != 0 {
		t.Errorf("api-b exited %d after SIGTERM", code)
	}
}

func httpBody(t *testing.T, url string) string {
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
	return string(b)
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
