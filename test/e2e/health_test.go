package e2e

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// healthServer is a workload's health endpoint the test turns on and off.
type healthServer struct {
	ok  atomic.Bool
	url string
}

func newHealthServer(t *testing.T) *healthServer {
	t.Helper()
	h := &healthServer{}
	h.ok.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.ok.Load() {
			http.Error(w, "injected: the workload is broken", http.StatusServiceUnavailable)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h.url = "http://" + ln.Addr().String() + "/healthz"
	return h
}

// The leader's workload turns unhealthy: leadership moves to a healthy
// replica within about threshold × period plus the hand-over, the unhealthy
// one holds back (saying why, in its status and in an Event) and does not
// take the lease back; when every replica is unhealthy nobody leads, and
// leadership resumes as soon as one is healthy again.
func TestHealthGatedLeadership(t *testing.T) {
	const lease = "health"
	const period, failures = 200 * time.Millisecond, 3
	ids := []string{"health-a", "health-b", "health-c"}
	health := map[string]*healthServer{}
	procs := map[string]*proc{}
	watches := map[string]<-chan viewEvent{}
	for i, id := range ids {
		createPod(t, "default", id, map[string]string{"app": lease})
		health[id] = newHealthServer(t)
		procs[id] = sidecar(t, lease, id, []string{"POD_NAME=" + id}, "--await-app=false", "--events",
			"--health-url="+health[id].url, "--health-period="+period.String(), "--health-timeout=100ms",
			"--health-failure-threshold=3", "--health-success-threshold=2")
		watches[id] = follow(t, procs[id].statusAddr())
		if i == 0 {
			until(t, id+" leading", watches[id], leading)
		}
	}
	leaderOf := func() string {
		l, err := admin.CoordinationV1().Leases("default").Get(context.Background(), lease, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	first := ids[0]
	for _, id := range ids[1:] {
		until(t, id+" following", watches[id], func(v viewEvent) bool { return v.State == "following" && v.Leader == first })
	}

	broke := time.Now()
	health[first].ok.Store(false)
	told := until(t, first+" stepping down", watches[first], notLeading)
	var next string
	eventually(t, "a healthy replica leading", func() (bool, string) {
		next = leaderOf()
		return next != "" && next != first, "holder " + next
	})
	moved := time.Since(broke)
	t.Logf("health failing -> %s stepped down after %v -> %s leads %v after the failure began (threshold × period = %v)",
		first, told.at.Sub(broke), next, moved, failures*period)
	if v := until(t, first+" held back", watches[first], func(v viewEvent) bool { return v.State == "held back" }); !strings.Contains(v.Reason, "503") {
		t.Errorf("%s's reason: %q; want it to name the failing check (503)", first, v.Reason)
	}

	// The new leader releases: the third replica takes it, not the
	// unhealthy one.
	if code, _, errOut := runCLI(t, nil, "release", "--kubeconfig="+kubeconfig, "-n", "default", "--lease="+lease, "--wait=20s"); code != 0 {
		t.Fatalf("release: exit %d: %s", code, errOut)
	}
	if now := leaderOf(); now == first || now == "" {
		t.Errorf("after %s released, the holder is %q; want the other healthy replica", next, now)
	}

	// Everyone unhealthy: nobody leads, each says why.
	for _, id := range ids {
		health[id].ok.Store(false)
	}
	eventually(t, "nobody leading", func() (bool, string) {
		for _, id := range ids {
			if v := viewOf(t, procs[id].statusAddr()); v.IsLeader || v.State != "held back" || !strings.Contains(v.Reason, "unhealthy") {
				return false, id + ": " + jsonString(v)
			}
		}
		return true, ""
	})
	if h := leaderOf(); h != "" {
		t.Errorf("the lease is still held by %q while every replica is unhealthy", h)
	}
	evs, err := admin.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + first + ",reason=CandidacyPaused"})
	if err != nil || len(evs.Items) == 0 {
		t.Errorf("no CandidacyPaused event on %s (%v)", first, err)
	} else if !strings.Contains(evs.Items[0].Message, "503") {
		t.Errorf("the event does not say why: %q", evs.Items[0].Message)
	}

	// One recovers: it leads.
	healed := time.Now()
	health[first].ok.Store(true)
	until(t, first+" leading again", watches[first], leading)
	t.Logf("all unhealthy -> %s healthy again -> leads %v later (success threshold × period = %v)", first, time.Since(healed), 2*period)
}
