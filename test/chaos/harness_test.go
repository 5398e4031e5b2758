package chaos_test

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/incumbent-io/incumbent/internal/tcpproxy"
	"github.com/incumbent-io/incumbent/test/chaos/checker"
	"github.com/incumbent-io/incumbent/test/chaos/delayproxy"
)

// The short timings of every sidecar, valid for election.Config.Validate:
// 1s*1.01 + 500ms < 2s*0.99.
const (
	leaseDuration = 2 * time.Second
	renewDeadline = time.Second
	retryPeriod   = 250 * time.Millisecond
	grace         = 500 * time.Millisecond
)

// Bounds of the harness's waits.
const (
	// settleBound bounds the wait for leadership to come back after a
	// fault; an API server restart alone takes about 5s.
	settleBound = 60 * time.Second
	// quiet is how long after a fault ends the term in office must still
	// be in office for the fault to count as over: by then the leader has
	// renewed after the fault, or its term has ended (renewDeadline), so
	// nothing it causes is attributed to the next fault.
	quiet = renewDeadline + retryPeriod
	// exitBound bounds the wait for a signalled process to exit.
	exitBound = 30 * time.Second
	// pollEvery is the poll interval of the bounded waits on state that
	// does not notify (process states in /proc).
	pollEvery = 20 * time.Millisecond
)

// candidate is one identity, reaching the API server through its own proxy
// (which a fault can cut), then through the shared delaying proxy.
type candidate struct {
	id         string
	proxy      *tcpproxy.Proxy
	kubeconfig string
	cur        *sidecar // the process running now under this identity
}

// harness runs one election of several `incumbent run -- child` sidecars
// against the shared cluster and an own checker.
type harness struct {
	t     *testing.T
	lease string
	dir   string
	check *checker.Checker
	srv   *httptest.Server
	slow  *delayproxy.Proxy
	cands []*candidate
	all   []*sidecar // every sidecar started, replacements included
	rng   *rand.Rand
	api   *apiProfile // the API-server profile, nil in the others
}

// newHarness starts n sidecars campaigning for lease; the report lists
// kinds first. Everything it starts is stopped by the test's cleanup,
// processes first; their logs are kept if the test fails or -chaos.keep.
func newHarness(t *testing.T, lease string, n int, fencing bool, kinds []string, seed uint64) *harness {
	t.Helper()
	return newHarnessFor(t, lease, n, fencing, kinds, seed, nil)
}

// newHarnessFor is newHarness, with the workloads writing to the API server
// when api is not nil (fencing then says whether the fence policy is
// installed).
func newHarnessFor(t *testing.T, lease string, n int, fencing bool, kinds []string, seed uint64, api *apiProfile) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "incumbent-chaos-logs-"+lease+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs last: the logs are kept when the test failed
		if t.Failed() || *flagKeep {
			t.Logf("the sidecars' logs are kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	h := &harness{t: t, lease: lease, dir: dir, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), api: api}
	h.check = checker.New(checker.Options{Fencing: fencing, Kinds: kinds, APIServer: api != nil})
	if api != nil {
		api.setUp(h, fencing)
	}
	h.srv = httptest.NewServer(h.check.Handler())
	t.Cleanup(h.srv.Close)
	slow, err := delayproxy.Start(cluster.APIServerAddr())
	if err != nil {
		t.Fatal(err)
	}
	h.slow = slow
	t.Cleanup(func() { slow.Close() })
	for i := range n {
		p, err := tcpproxy.Start(slow.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		c := &candidate{id: fmt.Sprintf("%s-%d", lease, i+1), proxy: p}
		c.kubeconfig = filepath.Join(h.dir, c.id+".kubeconfig")
		if err := writeKubeconfig(c.kubeconfig, "https://"+p.Addr()); err != nil {
			t.Fatal(err)
		}
		h.cands = append(h.cands, c)
	}
	t.Cleanup(h.killAll) // runs first
	for _, c := range h.cands {
		h.start(c)
	}
	return h
}

// writeKubeconfig writes the administrator's credentials for server.
func writeKubeconfig(path, server string) error {
	cfg := cluster.Config()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["chaos"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["chaos"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["chaos"] = &clientcmdapi.Context{Cluster: "chaos", AuthInfo: "chaos", Namespace: "default"}
	kc.CurrentContext = "chaos"
	return clientcmd.WriteToFile(*kc, path)
}

// start runs a new sidecar under c's identity.
func (h *harness) start(c *candidate) {
	h.t.Helper()
	name := fmt.Sprintf("%s.%d", c.id, len(h.all)+1)
	// Every third workload ignores SIGTERM and is SIGKILLed at the end of
	// its grace period. A race-built program sleeps 1s at exit unless told
	// not to, which would overrun every grace period.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + workDir, "CHAOS_CHECKER=" + h.srv.URL,
		"CHAOS_STUBBORN_EVERY=3", "GORACE=atexit_sleep_ms=0"}
	if h.api != nil {
		env = append(env, h.api.podEnv(h, c, name)...)
	}
	args := []string{"run", "--lease", h.lease, "--namespace", "default", "--kubeconfig", c.kubeconfig,
		"--identity", c.id, "--lease-duration", leaseDuration.String(), "--renew-deadline", renewDeadline.String(),
		"--retry-period", retryPeriod.String(), "--grace", grace.String(), "--http-addr", "", "--control-addr", "", "--log-format", "json", "--log-level", *flagLogLevel,
		"--", childBin}
	s, err := startSidecar(name, filepath.Join(h.dir, name+".log"), env, args)
	if err != nil {
		h.t.Fatal(err)
	}
	c.cur = s
	h.all = append(h.all, s)
}

// between returns a random duration in [lo, hi).
func (h *harness) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(h.rng.Int64N(int64(hi-lo)))
}

// pause lets d pass: the deliberate length of a fault or of the gap
// between faults, never a stand-in for waiting on something.
func pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
}

// leader is the term in office and the candidate whose current sidecar
// runs its workload.
type leader struct {
	term checker.Term
	cand *candidate
}

// currentLeader finds the term with the highest token and checks that it is
// in office: not ended, its workload alive and a child of the current
// sidecar of the identity that began it.
func (h *harness) currentLeader() (leader, error) {
	terms := h.check.Terms()
	if len(terms) == 0 {
		return leader{}, fmt.Errorf("no term has begun")
	}
	latest := terms[0]
	for _, t := range terms[1:] {
		if t.Token > latest.Token {
			latest = t
		}
	}
	if latest.Ended() {
		return leader{}, fmt.Errorf("the latest term (%s, token %d) has ended", latest.Identity, latest.Token)
	}
	info := inspect(latest.PID)
	if info.gone() {
		return leader{}, fmt.Errorf("the workload of the latest term (%s, token %d, pid %d) is gone", latest.Identity, latest.Token, latest.PID)
	}
	for _, c := range h.cands {
		if c.id == latest.Identity && c.cur.alive() && c.cur.pid == info.ppid {
			return leader{term: latest, cand: c}, nil
		}
	}
	return leader{}, fmt.Errorf("the workload of the latest term (%s, token %d, pid %d) has parent %d, which is no current sidecar of %s",
		latest.Identity, latest.Token, latest.PID, info.ppid, latest.Identity)
}

// settled reports whether leadership is back after a fault that ended at
// end: every sidecar up and past its startup checks, the term with the
// highest token (above minToken) in office and writing, every older term
// ended or its workload gone, and quiet passed since end.
func (h *harness) settled(minToken int64, end time.Time) (bool, string) {
	for _, c := range h.cands {
		if !c.cur.alive() {
			return false, c.cur.name + " has exited"
		}
		if !c.cur.isReady() {
			return false, c.cur.name + " is starting"
		}
	}
	l, err := h.currentLeader()
	if err != nil {
		return false, err.Error()
	}
	if l.term.Token <= minToken {
		return false, fmt.Sprintf("no term above token %d yet", minToken)
	}
	if l.term.Writes-l.term.Rejected < 1 {
		return false, fmt.Sprintf("the term of %s (token %d) has not written yet", l.term.Identity, l.term.Token)
	}
	for _, t := range h.check.Terms() {
		if t.Token == l.term.Token || t.Ended() {
			continue
		}
		if info := inspect(t.PID); !info.gone() && info.exe == childBin {
			return false, fmt.Sprintf("the older term of %s (token %d, pid %d) has not ended", t.Identity, t.Token, t.PID)
		}
	}
	if wait := time.Until(end.Add(quiet)); wait > 0 {
		return false, fmt.Sprintf("quiet period: %v left", wait.Round(time.Millisecond))
	}
	return true, ""
}

// waitSettled waits, up to settleBound, until settled holds. It fails at
// once if a sidecar exits on its own.
func (h *harness) waitSettled(minToken int64, end time.Time) error {
	deadline := time.Now().Add(settleBound)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if err := h.unexpectedExit(); err != nil {
			return err
		}
		ok, why := h.settled(minToken, end)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leadership not back within %v: %s", settleBound, why)
		}
		<-tick.C
	}
}

// waitFor waits, up to settleBound, until cond holds on the checker's
// terms; cond is evaluated at every event of the checker.
func (h *harness) waitFor(what string, cond func([]checker.Term) bool) error {
	deadline := time.NewTimer(settleBound)
	defer deadline.Stop()
	for {
		changed := h.check.Changed()
		if cond(h.check.Terms()) {
			return nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return fmt.Errorf("%s: not within %v", what, settleBound)
		}
	}
}

// unexpectedExit reports a current sidecar that exited without the
// harness ending it.
func (h *harness) unexpectedExit() error {
	for _, c := range h.cands {
		if desc, expected := c.cur.outcome(); !c.cur.alive() && !expected {
			return fmt.Errorf("%s exited on its own (%s); its last output:\n%s", c.cur.name, desc, c.cur.output())
		}
	}
	return nil
}

// shutdown sends SIGTERM to every sidecar and checks that each exits 0:
// the leader stops its workload and releases the lease.
func (h *harness) shutdown() {
	h.t.Helper()
	for _, c := range h.cands {
		if c.cur.alive() {
			c.cur.expect()
			_ = syscall.Kill(c.cur.pid, syscall.SIGTERM)
		}
	}
	for _, c := range h.cands {
		select {
		case <-c.cur.exited:
			if code := c.cur.exitCode(); code != 0 {
				desc, _ := c.cur.outcome()
				h.t.Errorf("%s: %s after SIGTERM, want exit code 0; its last output:\n%s", c.cur.name, desc, c.cur.output())
			}
		case <-time.After(exitBound):
			h.t.Errorf("%s did not exit within %v of SIGTERM", c.cur.name, exitBound)
		}
	}
}

// killAll kills every process the harness started and is still running
// (sidecars by process group, workloads by theirs), then checks the
// outcomes: no data race reported, no exit the harness did not cause.
func (h *harness) killAll() {
	for _, s := range h.all {
		if !s.alive() {
			if desc, expected := s.outcome(); !expected {
				h.t.Errorf("%s exited on its own (%s); its last output:\n%s", s.name, desc, s.output())
			}
			continue
		}
		s.expect()
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	}
	for _, t := range h.check.Terms() {
		if info := inspect(t.PID); !info.gone() && info.exe == childBin {
			_ = syscall.Kill(-t.PID, syscall.SIGKILL)
		}
	}
	for _, s := range h.all {
		for _, ch := range []chan struct{}{s.exited, s.drained} {
			select {
			case <-ch:
			case <-time.After(exitBound):
				h.t.Errorf("%s (pid %d) still not gone %v after SIGKILL", s.name, s.pid, exitBound)
			}
		}
		if n := s.raceCount(); n > 0 {
			h.t.Errorf("%s: the race detector reported %d data race(s); see %s", s.name, n, s.logPath)
		}
	}
}
