package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// viewEvent is one /v1/watch event, with the moment it arrived.
type viewEvent struct {
	at       time.Time
	IsLeader bool   `json:"isLeader"`
	Leader   string `json:"leader"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Term     int64  `json:"term"`
}

// follow reads a sidecar's /v1/watch stream, stamping each event.
func follow(t *testing.T, addr string) <-chan viewEvent {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/watch")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
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

// until reads events until one satisfies ok, and returns it.
func until(t *testing.T, what string, ch <-chan viewEvent, ok func(viewEvent) bool) viewEvent {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case v, open := <-ch:
			if !open {
				t.Fatalf("the watch stream ended before %s", what)
			}
			if ok(v) {
				return v
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, wait)
		}
	}
}

func leading(v viewEvent) bool    { return v.IsLeader }
func notLeading(v viewEvent) bool { return !v.IsLeader }

// controlAddr is the bound address of the sidecar's local control endpoint.
func (p *proc) controlAddr() string {
	p.t.Helper()
	return p.waitLog("the control endpoint address", msg("control endpoint listening"))["addr"].(string)
}

const appGrace = 800 * time.Millisecond

// statusPair starts two status-API sidecars on lease, with a grace of
// appGrace, and returns (leader, follower) once both are followed.
func statusPair(t *testing.T, lease string, extra ...string) (l, f *proc, lw, fw <-chan viewEvent) {
	t.Helper()
	args := append([]string{"--grace=" + appGrace.String()}, extra...)
	a := sidecar(t, lease, lease+"-a", nil, args...)
	aw := follow(t, a.statusAddr())
	until(t, "a leading", aw, leading)
	b := sidecar(t, lease, lease+"-b", nil, args...)
	bw := follow(t, b.statusAddr())
	until(t, "b following a", bw, func(v viewEvent) bool { return v.Leader == lease+"-a" })
	return a, b, aw, bw
}

// In status-API mode the sidecar cannot see its application stop, so a
// voluntary step-down (incumbent release, here) holds the release until the
// application has had its grace: the successor is told it leads no sooner
// than --grace after the predecessor was told it does not. An application
// that says it has stopped (POST /v1/stepped-down on the local control
// endpoint) shortens that wait.
func TestStatusAPIReleaseWaitsForTheApp(t *testing.T) {
	t.Run("grace", func(t *testing.T) {
		lease := "hold-grace"
		_, _, aw, bw := statusPair(t, lease)
		if code, _, errOut := runCLI(t, nil, "release", "--kubeconfig="+kubeconfig, "-n", "default", "--lease="+lease); code != 0 {
			t.Fatalf("release: exit %d: %s", code, errOut)
		}
		told := until(t, "a told it no longer leads", aw, notLeading)
		took := until(t, "b leading", bw, leading)
		gap := took.at.Sub(told.at)
		t.Logf("predecessor told false -> successor told true: %v (grace %v)", gap, appGrace)
		if gap < appGrace {
			t.Errorf("the successor was told it leads %v after the predecessor was told it does not; want at least the grace, %v", gap, appGrace)
		}
	})
	t.Run("acknowledged", func(t *testing.T) {
		lease := "hold-ack"
		a, _, aw, bw := statusPair(t, lease)
		ctl := a.controlAddr()
		if code, _, errOut := runCLI(t, nil, "release", "--kubeconfig="+kubeconfig, "-n", "default", "--lease="+lease); code != 0 {
			t.Fatalf("release: exit %d: %s", code, errOut)
		}
		told := until(t, "a told it no longer leads", aw, notLeading)
		if told.State != "stepping down" {
			t.Errorf("a's state while its application stops: %q (%s); want \"stepping down\"", told.State, told.Reason)
		}
		acked := time.Now()
		resp, err := http.Post("http://"+ctl+"/v1/stepped-down", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/stepped-down: %d", resp.StatusCode)
		}
		took := until(t, "b leading", bw, leading)
		t.Logf("predecessor told false -> acknowledged after %v -> successor told true %v after that", acked.Sub(told.at), took.at.Sub(acked))
		if took.at.Before(acked) {
			t.Errorf("the successor was told it leads before the predecessor's application acknowledged")
		}
		if gap := took.at.Sub(told.at); gap >= appGrace {
			t.Errorf("the successor waited %v, the whole grace, despite the acknowledgement", gap)
		}
	})
	t.Run("acknowledgement only shortens a step-down", func(t *testing.T) {
		lease := "hold-noop"
		a, _, _, _ := statusPair(t, lease)
		resp, err := http.Post("http://"+a.controlAddr()+"/v1/stepped-down", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("POST /v1/stepped-down while leading: %d; want 409 (it never starts a step-down)", resp.StatusCode)
		}
		if v := viewOf(t, a.statusAddr()); !v.IsLeader {
			t.Errorf("a stopped leading after an acknowledgement outside a step-down: %s", jsonString(v))
		}
	})
}

// A pod that is being deleted steps down at once (the native sidecar's
// preStop hook runs `incumbent withdraw` at the start of the pod's
// termination, long before the kubelet signals the sidecar itself): the
// application is told first, gets its grace, then the lease is released,
// and the withdrawn sidecar never campaigns again while it lives.
func TestWithdrawStepsDownAtOnceAndForGood(t *testing.T) {
	lease := "withdraw"
	a, b, aw, bw := statusPair(t, lease)
	began := time.Now()
	code, out, errOut := runCLI(t, nil, "withdraw", "--control-addr="+a.controlAddr())
	if code != 0 {
		t.Fatalf("withdraw: exit %d: %s%s", code, out, errOut)
	}
	told := until(t, "a told it no longer leads", aw, notLeading)
	took := until(t, "b leading", bw, leading)
	t.Logf("withdraw -> a told false in %v -> b told true %v later (grace %v)", told.at.Sub(began), took.at.Sub(told.at), appGrace)
	if gap := took.at.Sub(told.at); gap < appGrace {
		t.Errorf("b was told it leads %v after a was told it does not; want at least the grace, %v", gap, appGrace)
	}
	if v := until(t, "a held back", aw, func(v viewEvent) bool { return v.State == "held back" }); !strings.Contains(v.Reason, "withdrawn") {
		t.Errorf("a's reason: %q; want it to say it withdrew", v.Reason)
	}
	// b releases: the lease is free, but only b, after its own hold-back,
	// takes it again; a never does.
	var ledAgain atomic.Bool
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for v := range aw {
			if v.IsLeader {
				ledAgain.Store(true)
			}
		}
	}()
	if code, _, errOut := runCLI(t, nil, "release", "--kubeconfig="+kubeconfig, "-n", "default", "--lease="+lease); code != 0 {
		t.Fatalf("release: exit %d: %s", code, errOut)
	}
	until(t, "b's step-down", bw, notLeading)
	until(t, "b leading again", bw, leading)
	a.signal(syscall.SIGTERM)
	if code := a.wait(); code != 0 {
		t.Errorf("a exited %d after SIGTERM; want 0", code)
	}
	<-drained // a's stream ended with a
	if ledAgain.Load() {
		t.Error("the withdrawn sidecar led again")
	}
	b.signal(syscall.SIGTERM)
	b.wait()
}
