package chaos_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/incumbent-io/incumbent/internal/tcpproxy"
	"github.com/incumbent-io/incumbent/test/chaos/checker"
)

// The kinds of fault, as the report names them.
const (
	faultKill       = "leader SIGKILL"
	faultStop       = "leader SIGSTOP"
	faultCut        = "leader cut off"
	faultLatency    = "API latency"
	faultAPIRestart = "API server restart"
	faultEtcd       = "etcd restart"
)

// allFaults lists every kind, in the report's order.
var allFaults = []string{faultKill, faultStop, faultCut, faultLatency, faultAPIRestart, faultEtcd}

// faultFlags names each kind for -chaos.faults.
var faultFlags = map[string]string{"kill": faultKill, "stop": faultStop, "cut": faultCut, "latency": faultLatency,
	"apiserver": faultAPIRestart, "etcd": faultEtcd}

func faultFlagNames() []string {
	var names []string
	for _, kind := range allFaults {
		for name, k := range faultFlags {
			if k == kind {
				names = append(names, name)
			}
		}
	}
	return names
}

// selectedFaults parses -chaos.faults: empty means every kind.
func selectedFaults(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return allFaults, nil
	}
	var kinds []string
	for _, name := range strings.Split(list, ",") {
		kind, ok := faultFlags[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("unknown fault %q (want a comma-separated list of %s)", name, strings.Join(faultFlagNames(), ", "))
		}
		if !slices.Contains(kinds, kind) {
			kinds = append(kinds, kind)
		}
	}
	return kinds, nil
}

// How a paused leader is resumed.
type resume int

const (
	// resumeTogether continues the sidecar's and the workload's groups at
	// once, in random order: a frozen VM or container thawing.
	resumeTogether resume = iota
	// resumeWorkloadFirst continues the workload, waits until it has
	// written, then continues the sidecar: the deposed leader's workload
	// surely acts before its sidecar can stop it.
	resumeWorkloadFirst
)

func (r resume) String() string {
	if r == resumeWorkloadFirst {
		return "workload first"
	}
	return "together"
}

// inject injects one fault of the given kind into a settled election and
// waits until it has settled again. An error means the harness could not
// go on (leadership did not come back, a process misbehaved).
func (h *harness) inject(kind string) error {
	l, err := h.currentLeader()
	if err != nil {
		return fmt.Errorf("before the fault: %w", err)
	}
	switch kind {
	case faultKill:
		return h.kill(l)
	case faultStop:
		mode := resumeTogether
		if h.rng.IntN(2) == 1 {
			mode = resumeWorkloadFirst
		}
		return h.stop(l, mode)
	case faultCut:
		return h.cut(l)
	case faultLatency:
		return h.latency(l)
	case faultAPIRestart:
		return h.restart(l, kind, cluster.RestartAPIServer)
	case faultEtcd:
		return h.restart(l, kind, cluster.RestartEtcd)
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// settle waits for leadership to come back after f, which ended at end,
// and marks it settled; with mustMove the new term must be above the one
// in office at the injection.
func (h *harness) settle(f *checker.Fault, l leader, mustMove bool, end time.Time, detail string) error {
	minToken := int64(-1)
	if mustMove {
		minToken = l.term.Token
	}
	if err := h.waitSettled(minToken, end); err != nil {
		return fmt.Errorf("%s of %s (token %d; %s): %w", f.Kind, l.term.Identity, l.term.Token, detail, err)
	}
	f.Settle()
	next, _ := h.currentLeader()
	h.t.Logf("%-18s %-10s token %3d → %-10s token %3d, %s; settled %v after injection",
		f.Kind, l.term.Identity, l.term.Token, next.term.Identity, next.term.Token, detail, time.Since(f.Start).Round(time.Millisecond))
	return nil
}

// kill SIGKILLs the leader's sidecar (its workload dies of its
// parent-death signal), then starts a replacement under the same identity,
// like a restarted pod.
func (h *harness) kill(l leader) error {
	s := l.cand.cur
	f := h.check.StartFault(faultKill)
	s.expect()
	if err := s.signalGroup(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-s.exited:
	case <-time.After(exitBound):
		return fmt.Errorf("%s did not exit within %v of SIGKILL", s.name, exitBound)
	}
	h.start(l.cand)
	return h.settle(f, l, true, f.Start, "replacement started")
}

// stop pauses the leader's sidecar and workload (both process groups)
// until another term has begun and written, and for longer than the lease
// duration, then resumes them.
func (h *harness) stop(l leader, mode resume) error {
	s, child := l.cand.cur, l.term.PID
	f := h.check.StartFault(faultStop)
	if err := s.signalGroup(syscall.SIGSTOP); err != nil {
		return err
	}
	stopped := true
	cont := func() {
		if stopped {
			_ = syscall.Kill(-child, syscall.SIGCONT)
			_ = s.signalGroup(syscall.SIGCONT)
			stopped = false
		}
	}
	defer cont() // on every error path
	if err := syscall.Kill(-child, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("SIGSTOP the workload group %d of %s: %w", child, s.name, err)
	}
	err := h.waitFor("a new term writing while the leader is paused", func(terms []checker.Term) bool {
		for _, t := range terms {
			if t.Token > l.term.Token && t.Writes > t.Rejected {
				return true
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	// Longer than the lease, and a random while after the new term began.
	if until := f.Start.Add(leaseDuration + h.between(500*time.Millisecond, 1500*time.Millisecond)); time.Now().Before(until) {
		pause(time.Until(until))
	}
	pause(h.between(0, 500*time.Millisecond))
	paused := time.Since(f.Start)

	resumed := time.Now()
	switch mode {
	case resumeWorkloadFirst:
		if err := syscall.Kill(-child, syscall.SIGCONT); err != nil {
			return fmt.Errorf("SIGCONT the workload group %d: %w", child, err)
		}
		err := h.waitFor("the resumed workload's first write", func(terms []checker.Term) bool {
			for _, t := range terms {
				if t.Token == l.term.Token && t.LastWrite.After(resumed) {
					return true
				}
			}
			return false
		})
		if err != nil {
			return err
		}
		if err := s.signalGroup(syscall.SIGCONT); err != nil {
			return err
		}
	default:
		first, second := func() error { return s.signalGroup(syscall.SIGCONT) }, func() error { return syscall.Kill(-child, syscall.SIGCONT) }
		if h.rng.IntN(2) == 1 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	stopped = false
	return h.settle(f, l, true, time.Now(), fmt.Sprintf("paused %v, resumed %v", paused.Round(time.Millisecond), mode))
}

// cut makes the leader's proxy refuse connections (or hold them without
// forwarding anything) for a random while, then restores it.
func (h *harness) cut(l leader) error {
	mode, name := tcpproxy.Refuse, "refused"
	if h.rng.IntN(2) == 1 {
		mode, name = tcpproxy.Blackhole, "blackholed"
	}
	hold := h.between(500*time.Millisecond, 4*time.Second)
	f := h.check.StartFault(faultCut)
	l.cand.proxy.Set(mode)
	pause(hold)
	l.cand.proxy.Set(tcpproxy.Pass)
	return h.settle(f, l, false, time.Now(), fmt.Sprintf("%s for %v", name, hold.Round(time.Millisecond)))
}

// latency delays every chunk between every sidecar and the API server for
// a random while.
func (h *harness) latency(l leader) error {
	delay := h.between(100*time.Millisecond, 400*time.Millisecond)
	hold := h.between(time.Second, 4*time.Second)
	f := h.check.StartFault(faultLatency)
	h.slow.SetDelay(delay)
	pause(hold)
	h.slow.SetDelay(0)
	// Chunks read before the reset are still held for up to delay.
	return h.settle(f, l, false, time.Now().Add(delay), fmt.Sprintf("%v each way for %v", delay.Round(time.Millisecond), hold.Round(time.Millisecond)))
}

// restart restarts a server of the control plane in place.
func (h *harness) restart(l leader, kind string, restart func() error) error {
	f := h.check.StartFault(kind)
	if err := restart(); err != nil {
		return err
	}
	return h.settle(f, l, false, time.Now(), fmt.Sprintf("down and back in %v", time.Since(f.Start).Round(time.Millisecond)))
}
