package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/incumbent-io/incumbent/internal/statusapi"
	"github.com/incumbent-io/incumbent/store/kube"
)

// severalGrace is the --grace of the sidecars of several leases: long enough
// to tell a release held for the grace from one acknowledged at once.
const severalGrace = 800 * time.Millisecond

// severalSidecar starts `incumbent run` for every lease of leases in one
// process, on the backend args name (nil: the test API server's namespace
// default, as the administrator).
func severalSidecar(t *testing.T, identity string, leases, backend []string, extra ...string) *proc {
	t.Helper()
	if backend == nil {
		backend = []string{"--kubeconfig=" + kubeconfig, "-n", "default"}
	}
	args := append([]string{"run", "--lease=" + strings.Join(leases, ","), "--identity=" + identity,
		"--http-addr=127.0.0.1:0", "--log-format=json", "--log-level=debug"}, fastTimings...)
	args = append(append(append(args, "--grace="+severalGrace.String()), backend...), extra...)
	return start(t, identity, nil, args...)
}

// leaseViews reads GET /v1/leases.
func leaseViews(t *testing.T, addr string) []statusapi.View {
	t.Helper()
	var ls statusapi.Leases
	if code := getJSON(t, "http://"+addr+"/v1/leases", &ls); code != 200 {
		t.Fatalf("/v1/leases on %s: %d", addr, code)
	}
	return ls.Items
}

// leaseView reads GET /v1/leases/NAME/status.
func leaseView(t *testing.T, addr, lease string) statusapi.View {
	t.Helper()
	var v statusapi.View
	if code := getJSON(t, "http://"+addr+"/v1/leases/"+lease+"/status", &v); code != 200 {
		t.Fatalf("/v1/leases/%s/status on %s: %d", lease, addr, code)
	}
	return v
}

// holders waits until every lease has exactly one leader among the
// processes (addrs: identity → status API), as their per-lease status
// endpoints say; each other process names it as the leader, and, on
// Kubernetes (kubeNS not empty), the Lease's holder and term are the
// leader's. It returns the leader of each lease.
func holders(t *testing.T, leases []string, addrs map[string]string, kubeNS string) map[string]string {
	t.Helper()
	var out map[string]string
	eventually(t, "one holder per lease, on which every endpoint and the Lease agree", func() (bool, string) {
		out = map[string]string{}
		for _, lease := range leases {
			var leaders []string
			views := map[string]statusapi.View{}
			for id, addr := range addrs {
				v := leaseView(t, addr, lease)
				views[id] = v
				if v.Lease != lease || v.Identity != id {
					return false, fmt.Sprintf("%s's view of %s: %s", id, lease, jsonString(v))
				}
				if v.IsLeader {
					leaders = append(leaders, id)
				}
			}
			if len(leaders) != 1 {
				return false, fmt.Sprintf("lease %s: leaders %q", lease, leaders)
			}
			leader := leaders[0]
			for id, v := range views {
				if !v.Known || v.Leader != leader || v.Term != views[leader].Term {
					return false, fmt.Sprintf("lease %s: %s says %s", lease, id, jsonString(v))
				}
			}
			if kubeNS != "" {
				l, err := admin.CoordinationV1().Leases(kubeNS).Get(context.Background(), lease, metav1.GetOptions{})
				if err != nil {
					return false, err.Error()
				}
				if rec := kube.RecordOf(l); rec.Holder != leader || rec.Term != views[leader].Term {
					return false, fmt.Sprintf("Lease %s: holder %q term %d; the leader's view: %s", lease, rec.Holder, rec.Term, jsonString(views[leader]))
				}
			}
			out[lease] = leader
		}
		return true, ""
	})
	return out
}

// followURL reads the /v1/watch-like stream at url, stamping each event.
func followURL(t *testing.T, url string) <-chan viewEvent {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan viewEvent, 256)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				v := viewEvent{at: time.Now()}
				if json.Unmarshal([]byte(data), &v) == nil {
					out <- v
				}
			}
		}
	}()
	return out
}

// followLease follows one lease of a sidecar: GET /v1/leases/NAME/watch.
func followLease(t *testing.T, addr, lease string) <-chan viewEvent {
	t.Helper()
	return followURL(t, "http://"+addr+"/v1/leases/"+lease+"/watch")
}

func postStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// TestSeveralLeases runs two processes that each hold three leases on the
// real API server: every lease has exactly one holder, on which the
// per-lease endpoints and the Leases agree; the endpoints of one election
// refuse, naming the per-lease paths; a lease released moves on its own,
// its hand-off shortened by the application's acknowledgement; SIGTERM to
// the process that leads the others ends every term, releases each lease
// after its application stepped down (or its grace), moves them to the
// other process, and exits 0.
func TestSeveralLeases(t *testing.T) {
	leases := []string{"sev-a", "sev-b", "sev-c"}
	a := severalSidecar(t, "sev-1", leases, nil)
	aAddr, aCtl := a.statusAddr(), a.controlAddr()
	eventually(t, "sev-1 leading every lease", func() (bool, string) {
		vs := leaseViews(t, aAddr)
		for _, v := range vs {
			if !v.IsLeader {
				return false, jsonString(vs)
			}
		}
		return len(vs) == 3, jsonString(vs)
	})
	b := severalSidecar(t, "sev-2", leases, nil)
	bAddr, bCtl := b.statusAddr(), b.controlAddr()
	addrs := map[string]string{"sev-1": aAddr, "sev-2": bAddr}
	if got := holders(t, leases, addrs, "default"); got["sev-a"] != "sev-1" || got["sev-b"] != "sev-1" || got["sev-c"] != "sev-1" {
		t.Fatalf("holders %v; want sev-1 for each", got)
	}
	// /v1/leases lists them in the order given.
	var order []string
	for _, v := range leaseViews(t, bAddr) {
		order = append(order, v.Lease)
	}
	if !slices.Equal(order, leases) {
		t.Errorf("/v1/leases lists %q, want %q", order, leases)
	}

	// The endpoints of one election refuse with several leases, saying
	// where to ask instead.
	for _, path := range []string{"/v1/status", "/v1/watch", "/", "/readyz/leader"} {
		code, body := getText(t, "http://"+aAddr+path)
		if code != 400 || !strings.Contains(body, "this sidecar holds several leases (sev-a, sev-b, sev-c)") || !strings.Contains(body, "/v1/leases/NAME/") {
			t.Errorf("GET %s with several leases: %d %q; want 400 naming the per-lease paths", path, code, body)
		}
	}
	if code, body := postStatus(t, "http://"+aCtl+"/v1/stepped-down"); code != 400 || !strings.Contains(body, "POST /v1/leases/NAME/stepped-down") {
		t.Errorf("POST /v1/stepped-down with several leases: %d %q", code, body)
	}
	if code, body := getText(t, "http://"+aCtl+"/v1/status"); code != 400 || !strings.Contains(body, "GET /v1/leases/NAME/status") {
		t.Errorf("GET /v1/status on the control endpoint with several leases: %d %q", code, body)
	}
	for _, addr := range []string{aAddr, bAddr} {
		for _, path := range []string{"/readyz", "/healthz"} {
			if code, body := getText(t, "http://"+addr+path); code != 200 {
				t.Errorf("GET %s on %s: %d %q", path, addr, code, body)
			}
		}
	}
	metrics := httpBody(t, "http://"+aAddr+"/metrics")
	for _, lease := range leases {
		for _, want := range []string{`incumbent_is_leader{lease="default/` + lease + `"} 1`, `incumbent_terms_total{lease="default/` + lease + `"} 1`,
			`incumbent_renew_duration_seconds_count{lease="default/` + lease + `"}`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("sev-1's metrics lack %q", want)
			}
		}
	}
	if n := strings.Count(metrics, "\nprocess_resident_memory_bytes "); n != 1 {
		t.Errorf("process_resident_memory_bytes appears %d times in one /metrics, want once", n)
	}
	if !strings.Contains(httpBody(t, "http://"+bAddr+"/metrics"), `incumbent_is_leader{lease="default/sev-b"} 0`) {
		t.Error("sev-2's metrics do not say is_leader 0 for sev-b")
	}

	// One lease released moves alone; the application's acknowledgement of
	// that lease releases it before the grace is over.
	aw, bw := followLease(t, aAddr, "sev-b"), followLease(t, bAddr, "sev-b")
	until(t, "sev-1 leading sev-b on its stream", aw, leading)
	if code, _, errOut := runCLI(t, nil, "release", "--kubeconfig="+kubeconfig, "-n", "default", "--lease=sev-b"); code != 0 {
		t.Fatalf("release sev-b: exit %d: %s", code, errOut)
	}
	told := until(t, "sev-1 told it no longer leads sev-b", aw, notLeading)
	if told.State != "stepping down" {
		t.Errorf("sev-1's state for sev-b while its application stops: %q (%s)", told.State, told.Reason)
	}
	acked := time.Now()
	if code, body := postStatus(t, fmt.Sprintf("http://%s/v1/leases/sev-b/stepped-down?term=%d", aCtl, told.Term)); code != 200 {
		t.Fatalf("POST /v1/leases/sev-b/stepped-down: %d %q", code, body)
	}
	took := until(t, "sev-2 leading sev-b", bw, leading)
	t.Logf("sev-b: told false -> acknowledged %v later -> sev-2 told true %v after that (grace %v)",
		acked.Sub(told.at).Round(time.Millisecond), took.at.Sub(acked).Round(time.Millisecond), severalGrace)
	if gap := took.at.Sub(told.at); took.at.Before(acked) || gap >= severalGrace {
		t.Errorf("sev-2 took sev-b %v after sev-1 was told (acknowledged after %v); want after the acknowledgement and before the grace, %v",
			gap, acked.Sub(told.at), severalGrace)
	}
	if got := holders(t, leases, addrs, "default"); got["sev-a"] != "sev-1" || got["sev-b"] != "sev-2" || got["sev-c"] != "sev-1" {
		t.Fatalf("after the release of sev-b: holders %v", got)
	}
	if code, _ := postStatus(t, "http://"+bCtl+"/v1/leases/sev-b/stepped-down"); code != 409 {
		t.Errorf("an acknowledgement while leading: %d; want 409, it never starts a step-down", code)
	}

	// SIGTERM to the process leading sev-a and sev-c: both move. sev-c's
	// application acknowledges, sev-a's does not (its grace is waited for).
	type pair struct{ from, to <-chan viewEvent }
	watched := map[string]pair{}
	for _, lease := range []string{"sev-a", "sev-c"} {
		watched[lease] = pair{followLease(t, aAddr, lease), followLease(t, bAddr, lease)}
		until(t, "sev-1 leading "+lease, watched[lease].from, leading)
	}
	a.signal(syscall.SIGTERM)
	toldC := until(t, "sev-1 told it no longer leads sev-c", watched["sev-c"].from, notLeading)
	if code, body := postStatus(t, "http://"+aCtl+"/v1/leases/sev-c/stepped-down"); code != 200 {
		t.Errorf("POST /v1/leases/sev-c/stepped-down during the shutdown: %d %q", code, body)
	}
	tookC := until(t, "sev-2 leading sev-c", watched["sev-c"].to, leading)
	toldA := until(t, "sev-1 told it no longer leads sev-a", watched["sev-a"].from, notLeading)
	tookA := until(t, "sev-2 leading sev-a", watched["sev-a"].to, leading)
	t.Logf("SIGTERM: sev-c (acknowledged) moved %v after its application was told, sev-a (not) %v after (grace %v)",
		tookC.at.Sub(toldC.at).Round(time.Millisecond), tookA.at.Sub(toldA.at).Round(time.Millisecond), severalGrace)
	if gap := tookA.at.Sub(toldA.at); gap < severalGrace {
		t.Errorf("sev-2 took sev-a %v after sev-1's application was told; want at least the grace, %v", gap, severalGrace)
	}
	if gap := tookC.at.Sub(toldC.at); gap >= severalGrace {
		t.Errorf("sev-2 took sev-c %v after sev-1's application was told, despite the acknowledgement", gap)
	}
	if code := a.wait(); code != 0 {
		t.Errorf("sev-1 exited %d after SIGTERM, want 0", code)
	}
	for _, lease := range []string{"sev-a", "sev-c"} {
		if a.logCount(func(l map[string]any) bool {
			return l["msg"] == "released the lease" && l["lease"] == "lease default/"+lease
		}) != 1 {
			t.Errorf("sev-1 did not log the release of %s", lease)
		}
	}
	if got := holders(t, leases, map[string]string{"sev-2": bAddr}, "default"); len(got) != 3 {
		t.Fatalf("after sev-1's exit: holders %v", got)
	}
	b.signal(syscall.SIGTERM)
	if code := b.wait(); code != 0 {
		t.Errorf("sev-2 exited %d after SIGTERM, want 0", code)
	}
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// TestSeveralLeasesOnEtcdAndFiles: the same processes on the other
// backends, one etcd client or one folder for every lease.
func TestSeveralLeasesOnEtcdAndFiles(t *testing.T) {
	for name, backend := range map[string][]string{
		"etcd": {"--backend=etcd", "--etcd-endpoints=" + env.EtcdEndpoint(), "--etcd-prefix=/incumbent-several"},
		"file": {"--backend=file", "--file-dir=" + t.TempDir()},
	} {
		t.Run(name, func(t *testing.T) {
			leases := []string{name + "-a", name + "-b"}
			a := severalSidecar(t, name+"-1", leases, backend)
			aAddr := a.statusAddr()
			holders(t, leases, map[string]string{name + "-1": aAddr}, "")
			b := severalSidecar(t, name+"-2", leases, backend)
			addrs := map[string]string{name + "-1": aAddr, name + "-2": b.statusAddr()}
			if got := holders(t, leases, addrs, ""); got[leases[0]] != name+"-1" || got[leases[1]] != name+"-1" {
				t.Fatalf("holders %v; want %s-1 for both", got, name)
			}
			a.signal(syscall.SIGTERM)
			if code := a.wait(); code != 0 {
				t.Errorf("%s-1 exited %d after SIGTERM, want 0", name, code)
			}
			delete(addrs, name+"-1")
			if got := holders(t, leases, addrs, ""); got[leases[0]] != name+"-2" || got[leases[1]] != name+"-2" {
				t.Fatalf("after %s-1's exit: holders %v", name, got)
			}
			b.signal(syscall.SIGTERM)
			if code := b.wait(); code != 0 {
				t.Errorf("%s-2 exited %d after SIGTERM, want 0", name, code)
			}
		})
	}
}

// What acts on one workload or one lease refuses several leases: exit 2
// with a message naming the flag.
func TestSeveralLeasesInvalidInvocations(t *testing.T) {
	kc := "--kubeconfig=" + kubeconfig
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"exec", nil, []string{"run", kc, "--lease=x,y", "--", "true"}, "a command after -- (exec mode) is one workload, run only while one lease is held: it takes one lease, and --lease names 2 (x, y)"},
		{"leader port", nil, []string{"run", kc, "--lease=x", "--lease=y", "--leader-addr=127.0.0.1:0"}, "--leader-addr is one port, open while one lease is held: it takes one lease"},
		{"pod labels", []string{"INCUMBENT_LEASE=x,y,z"}, []string{"run", kc, "--label-pod"}, "--label-pod labels the pod leader or follower of one lease (incumbent.io/lease holds one name): it takes one lease, and --lease names 3 (x, y, z)"},
		{"a lease twice", nil, []string{"run", kc, "--lease=x,y,x"}, `lease "x" is named twice`},
		{"an empty lease", nil, []string{"run", kc, "--lease=x,,y"}, `an empty lease name in "x,,y"`},
		{"an invalid lease", nil, []string{"run", kc, "--lease=x,Bad_Name"}, `invalid lease name "Bad_Name"`},
		{"status", nil, []string{"status", kc, "--lease=x,y"}, "--lease (or INCUMBENT_LEASE) names 2 leases (x, y), and incumbent status acts on one"},
		{"watch", []string{"INCUMBENT_LEASE=x,y"}, []string{"watch", kc}, "and incumbent watch acts on one"},
		{"release", nil, []string{"release", kc, "--lease=x,y"}, "and incumbent release acts on one"},
		{"transfer", nil, []string{"transfer", kc, "--lease=x,y", "--to=z"}, "and incumbent transfer acts on one"},
		{"rbac with pod labels", nil, []string{"rbac", "--lease=x,y", "-n", "ns", "--service-account=sa", "--label-pod"}, "--label-pod: it takes one lease"},
		{"inject labels", nil, []string{"inject", "--lease=x,y", "--mode=labels", "-f", "/dev/null"}, "--mode labels takes one lease, and --lease names 2 (x, y)"},
		{"inject policy", nil, []string{"inject", "--lease=x,y", "--policy", "-n", "ns"}, "an admission policy selects Pods by their incumbent.io/lease label, which holds one lease name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(t, c.env, c.args...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Errorf("incumbent %q: exit %d, stderr:\n%s\nwant exit 2 and %q", c.args, code, stderr, c.want)
			}
		})
	}
}

// TestSeveralLeasesUnderTheGeneratedRole applies what `incumbent rbac
// --lease a,b,c` prints, for real, and runs two sidecars of those leases as
// that service account (a real token, --on-refused=exit): it is enough,
// optional permissions included, the shared watch of the namespace's Leases
// is allowed (no fall-back to one watch per lease), and a lease released
// moves at once.
func TestSeveralLeasesUnderTheGeneratedRole(t *testing.T) {
	const ns = "rbac-several-e2e"
	ctx := context.Background()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leases := []string{"rs-a", "rs-b", "rs-c"}
	code, doc, errOut := runCLI(t, nil, "rbac", "--lease="+strings.Join(leases, ","), "-n", ns, "--service-account=rs-sa", "--events")
	if code != 0 {
		t.Fatalf("incumbent rbac: exit %d: %s", code, errOut)
	}
	if !strings.Contains(doc, "falls back\n  # to one watch per lease") || !strings.Contains(doc, `verbs: ["list", "watch"]`) {
		t.Errorf("the Role does not grant list and watch on leases, or does not say why:\n%s", doc)
	}
	sa, _ := applyRBAC(t, doc)
	saKC := saKubeconfig(t, sa)
	addrs := map[string]string{}
	var procs []*proc
	for _, id := range []string{"rs-1", "rs-2"} {
		createPod(t, ns, id, nil)
		p := severalSidecar(t, id, leases, []string{"--kubeconfig=" + saKC, "-n", ns}, "--events", "--on-refused=exit")
		procs = append(procs, p)
		addrs[id] = p.statusAddr()
		if id == "rs-1" {
			holders(t, leases, map[string]string{id: addrs[id]}, ns)
		}
	}
	got := holders(t, leases, addrs, ns)
	for _, p := range procs {
		for _, bad := range []string{"an optional permission is missing: the sidecar works without it; add it to the Role", "incumbent failed"} {
			if n := p.logCount(msg(bad)); n > 0 {
				t.Errorf("%s logged %q under the generated Role:\n%s", p.name, bad, p.output())
			}
		}
		if strings.Contains(p.output(), "cannot watch all the Leases") {
			t.Errorf("%s fell back to one watch per lease under the generated Role", p.name)
		}
	}
	follower := procs[1]
	if got["rs-b"] == "rs-2" {
		follower = procs[0]
	}
	fw := followLease(t, addrs[follower.name], "rs-b")
	if code, _, errOut := runCLI(t, nil, "release", "--kubeconfig="+kubeconfig, "-n", ns, "--lease=rs-b"); code != 0 {
		t.Fatalf("release rs-b: exit %d: %s", code, errOut)
	}
	until(t, follower.name+" leading rs-b", fw, leading)
	eventually(t, "a LeaderElected event of "+follower.name+" naming lease rs-b", func() (bool, string) {
		evs, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + follower.name + ",reason=LeaderElected"})
		if err != nil {
			return false, err.Error()
		}
		var msgs []string
		for _, ev := range evs.Items {
			if strings.Contains(ev.Message, "leader of lease "+ns+"/rs-b,") {
				return true, ""
			}
			msgs = append(msgs, ev.Message)
		}
		return false, strings.Join(msgs, "; ")
	})
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if code := p.wait(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM under the generated Role, want 0", p.name, code)
		}
	}
}

// countingHealth is a workload's health endpoint that counts its requests.
type countingHealth struct {
	mu          sync.Mutex
	ok          bool
	first, last time.Time
	requests    int
	url         string
}

func newCountingHealth(t *testing.T) *countingHealth {
	t.Helper()
	h := &countingHealth{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		now := time.Now()
		if h.requests == 0 {
			h.first = now
		}
		h.last = now
		h.requests++
		if !h.ok {
			http.Error(w, "injected: the workload is broken", http.StatusServiceUnavailable)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h.url = "http://" + ln.Addr().String() + "/healthz"
	return h
}

func (h *countingHealth) set(ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ok = ok
}

// TestSeveralLeasesShareOneHealthGate: the health check of a sidecar of
// several leases gates every lease at once, and checks the workload about
// once per period, not once per lease: a broken workload leads nothing.
func TestSeveralLeasesShareOneHealthGate(t *testing.T) {
	const period = 200 * time.Millisecond
	leases := []string{"hg-a", "hg-b", "hg-c"}
	h := newCountingHealth(t)
	p := severalSidecar(t, "hg-1", leases, nil, "--await-app=false", "--health-url="+h.url,
		"--health-period="+period.String(), "--health-timeout=100ms", "--health-failure-threshold=2", "--health-success-threshold=2")
	addr := p.statusAddr()
	all := func(what string, ok func(statusapi.View) bool) {
		t.Helper()
		eventually(t, what, func() (bool, string) {
			vs := leaseViews(t, addr)
			for _, v := range vs {
				if !ok(v) {
					return false, jsonString(vs)
				}
			}
			return len(vs) == len(leases), jsonString(vs)
		})
	}
	// At first the reason may still be that the check has not passed yet
	// (a candidate starts unhealthy); once it fails after passing, it names
	// the failure.
	all("every lease held back by the failing check", func(v statusapi.View) bool {
		return !v.IsLeader && v.State == "held back" && strings.HasPrefix(v.Reason, "unhealthy: ")
	})
	h.set(true)
	all("every lease led once the workload is healthy", func(v statusapi.View) bool { return v.IsLeader })
	h.set(false)
	all("every lease stepped down and held back once it fails again", func(v statusapi.View) bool {
		return !v.IsLeader && v.State == "held back" && strings.Contains(v.Reason, "503")
	})
	// Counted over ten periods at least.
	eventually(t, "ten periods of health checks", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.last.Sub(h.first) >= 10*period, fmt.Sprintf("%d checks in %v", h.requests, h.last.Sub(h.first))
	})
	h.mu.Lock()
	n, span := h.requests, h.last.Sub(h.first)
	h.mu.Unlock()
	// A check starts only when the last answer is half a period old: at most
	// two a period, where a check per lease would make three.
	limit := int(2*span/period) + 2
	t.Logf("%d leases: %d health checks in %v (period %v; at most %d allowed)", len(leases), n, span.Round(time.Millisecond), period, limit)
	if n > limit {
		t.Errorf("%d health checks in %v with a period of %v: the leases do not share one check (limit %d)", n, span, period, limit)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// A terminating pod's sidecar of several leases withdraws from every one:
// `incumbent withdraw` (the preStop hook, with the container's
// INCUMBENT_LEASE) returns once each lease is released; a withdrawal that
// names only some of them is refused. The timings, --renew-interval
// included, are each lease's.
func TestWithdrawSeveralLeases(t *testing.T) {
	leases := []string{"wd-a", "wd-b"}
	p := severalSidecar(t, "wd-1", leases, []string{"--backend=file", "--file-dir=" + t.TempDir()}, "--renew-interval=1s")
	addr, ctl := p.statusAddr(), p.controlAddr()
	if l := p.waitLog("the start", msg("incumbent starting")); l["renew_interval"] != "1s" {
		t.Errorf("renew_interval %v in the start log, want 1s", l["renew_interval"])
	}
	holders(t, leases, map[string]string{"wd-1": addr}, "")
	code, out, errOut := runCLI(t, []string{"INCUMBENT_LEASE=wd-a"}, "withdraw", "--control-addr="+ctl, "--timeout=5s")
	if code != 1 || !strings.Contains(errOut, "this sidecar campaigns for leases wd-a, wd-b, not wd-a") {
		t.Errorf("a withdrawal naming one of two leases: exit %d: %s%s; want it refused", code, out, errOut)
	}
	code, out, errOut = runCLI(t, []string{"INCUMBENT_LEASE=wd-a,wd-b"}, "withdraw", "--control-addr="+ctl)
	if code != 0 || !strings.Contains(out, "withdrawn: lease wd-a: held back") || !strings.Contains(out, "withdrawn: lease wd-b: held back") {
		t.Fatalf("withdraw: exit %d: %s%s", code, out, errOut)
	}
	for _, v := range leaseViews(t, addr) {
		if v.IsLeader || v.State != "held back" || !strings.HasPrefix(v.Reason, "withdrawn") {
			t.Errorf("after withdraw: %s", jsonString(v))
		}
	}
	p.waitLogs("a release per lease", 2, msg("released the lease"))
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// leaseWatchers is the number of watches of Leases the API server serves
// now (its apiserver_longrunning_requests gauge).
func leaseWatchers(t *testing.T) int {
	t.Helper()
	b, err := admin.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `resource="leases"`) || !strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			n += int(v)
		}
	}
	return n
}

// TestDozensOfLeases: one process campaigns for forty leases, as a
// bucketed controller does: it starts (its startup check reviews every
// permission of every lease within its bound, rather than giving up the
// review with a warning), leads them all, records an event for each, and
// follows them through one watch of the namespace's Leases, not forty.
func TestDozensOfLeases(t *testing.T) {
	var leases []string
	for i := range 40 {
		leases = append(leases, fmt.Sprintf("dz-%02d", i))
	}
	createPod(t, "default", "dz-1", nil)
	before := leaseWatchers(t)
	began := time.Now()
	p := severalSidecar(t, "dz-1", leases, nil, "--await-app=false", "--events")
	addr := p.statusAddr()
	eventually(t, "every lease read and led", func() (bool, string) {
		if code, body := getText(t, "http://"+addr+"/readyz"); code != 200 {
			return false, body
		}
		for _, v := range leaseViews(t, addr) {
			if !v.IsLeader {
				return false, jsonString(v)
			}
		}
		return true, ""
	})
	t.Logf("%d leases: ready and leading every one %v after the start", len(leases), time.Since(began).Round(time.Millisecond))
	// Every permission of every lease was reviewed: none given up on for
	// want of time (client-go's default rate of 5 reviews a second would
	// not let 124 reviews through within the startup check's bound).
	if n := p.logCount(msg("cannot check RBAC permissions up front; the first refused request will tell")); n > 0 {
		t.Errorf("the startup check gave up reviewing the permissions of %d leases", len(leases))
	}
	// An event per lease, none lost to the client's rate limit.
	eventually(t, "a LeaderElected event per lease", func() (bool, string) {
		evs, err := admin.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=dz-1,reason=LeaderElected"})
		if err != nil {
			return false, err.Error()
		}
		return len(evs.Items) == len(leases), fmt.Sprintf("%d events", len(evs.Items))
	})
	if n := p.logCount(msg("could not record an event on the pod")); n > 0 {
		t.Errorf("%d events could not be recorded", n)
	}
	var watchers int
	eventually(t, "the Leases watched", func() (bool, string) {
		watchers = leaseWatchers(t) - before
		return watchers >= 1, fmt.Sprintf("%d watchers", watchers)
	})
	t.Logf("%d leases: %d more watches of Leases on the API server", len(leases), watchers)
	if watchers > 2 {
		t.Errorf("%d watches of Leases for one process of %d leases; want the one shared watch", watchers, len(leases))
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if n := p.logCount(msg("released the lease")); n != len(leases) {
		t.Errorf("%d releases logged, want %d", n, len(leases))
	}
}
