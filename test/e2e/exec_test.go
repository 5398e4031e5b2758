package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// childEvent is one line of the children's shared log.
type childEvent struct {
	what     string // start, end, OVERLAP
	identity string
	term     int64
	pid      int
	at       time.Time
}

func readChildLog(t *testing.T, path string) []childEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var evs []childEvent
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 5 {
			t.Fatalf("bad child log line %q", line)
		}
		term, err1 := strconv.ParseInt(f[2], 10, 64)
		pid, err2 := strconv.Atoi(f[3])
		ns, err3 := strconv.ParseInt(f[4], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("bad child log line %q", line)
		}
		evs = append(evs, childEvent{f[0], f[1], term, pid, time.Unix(0, ns)})
	}
	return evs
}

// TestExecChildrenNeverOverlap runs three `incumbent run -- child` sidecars
// and repeatedly takes the leader away: by SIGTERM (graceful hand-over,
// every other child ignoring SIGTERM so that it must be SIGKILLed after the
// grace period) and by SIGKILL of the leader's incumbent process (the child
// dies by its parent-death signal; the lease expires). The children hold an
// exclusive flock for their whole life, so any overlap is recorded by the
// kernel; terms must rise strictly.
func TestExecChildrenNeverOverlap(t *testing.T) {
	execNeverOverlap(t, "ex", nil,
		[]string{"SIGTERM", "SIGTERM", "SIGTERM", "SIGKILL", "SIGTERM", "SIGTERM", "SIGKILL", "SIGTERM"})
}

// TestExecWithTheFileBackend: the same without Kubernetes, processes of
// one machine sharing a lease file (incumbent as a plain supervisor).
func TestExecWithTheFileBackend(t *testing.T) {
	execNeverOverlap(t, "fx", []string{"--backend=file", "--file-dir=" + t.TempDir()},
		[]string{"SIGTERM", "SIGTERM", "SIGKILL", "SIGTERM"})
}

// TestExecWithTheEtcdBackend: the same with the lease as an etcd key, on a
// real etcd server.
func TestExecWithTheEtcdBackend(t *testing.T) {
	c, err := testenv.StartCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	execNeverOverlap(t, "ex-etcd", []string{"--backend=etcd", "--etcd-endpoints=" + c.EtcdEndpoint()},
		[]string{"SIGTERM", "SIGKILL", "SIGTERM"})
}

// execNeverOverlap runs three exec sidecars of lease and takes the leader
// away as steps say, checking that children never overlap.
func execNeverOverlap(t *testing.T, lease string, backend []string, steps []string) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "children.log")
	childEnv := []string{"CHILD_LOCK=" + filepath.Join(dir, "lock"), "CHILD_LOG=" + logPath, "CHILD_STUBBORN_ODD_TERMS=1"}
	procs := map[string]*proc{}
	n := 0
	spawn := func() {
		n++
		id := fmt.Sprintf("%s-%d", lease, n)
		procs[id] = sidecar(t, lease, id, childEnv, append(slices.Clone(backend), "--", childBin)...)
		// A process signalled before its runtime installed handlers dies
		// of the signal: wait until it is up.
		procs[id].statusAddr()
	}
	for range 3 {
		spawn()
	}
	// nextStart waits for a child start with a term above after.
	nextStart := func(after int64) childEvent {
		t.Helper()
		var got childEvent
		eventually(t, fmt.Sprintf("a child started in a term above %d", after), func() (bool, string) {
			evs := readChildLog(t, logPath)
			for _, ev := range evs {
				if ev.what == "start" && ev.term > after {
					got = ev
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d log lines", len(evs))
		})
		return got
	}

	cur := nextStart(-1)
	for step, how := range steps {
		leader := procs[cur.identity]
		if leader == nil {
			t.Fatalf("child started by unknown identity %q", cur.identity)
		}
		sent := time.Now()
		if how == "SIGTERM" {
			leader.signal(syscall.SIGTERM)
		} else {
			leader.signal(syscall.SIGKILL)
		}
		next := nextStart(cur.term)
		stubborn := cur.term%2 == 1
		t.Logf("step %d: %s of %s (term %d, child stubborn=%v) → next child (%s, term %d) started after %v",
			step, how, cur.identity, cur.term, stubborn, next.identity, next.term, next.at.Sub(sent).Round(time.Millisecond))
		code := leader.wait()
		if how == "SIGTERM" && code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", cur.identity, code)
		}
		delete(procs, cur.identity)
		spawn()
		cur = next
	}
	for id, p := range procs {
		p.signal(syscall.SIGTERM)
		if code := p.wait(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", id, code)
		}
	}

	evs := readChildLog(t, logPath)
	lastTerm := int64(-1)
	running := map[int]childEvent{}
	starts := 0
	for _, ev := range evs {
		switch ev.what {
		case "OVERLAP":
			t.Errorf("overlap: %s's child (term %d) started while another child held the lock", ev.identity, ev.term)
		case "start":
			starts++
			if ev.term <= lastTerm {
				t.Errorf("term %d started after term %d: tokens must rise", ev.term, lastTerm)
			}
			lastTerm = ev.term
			running[ev.pid] = ev
		case "end":
			if _, ok := running[ev.pid]; !ok {
				t.Errorf("end of unknown child %d", ev.pid)
			}
			if ev.term%2 == 1 {
				t.Errorf("stubborn child of term %d wrote an end line", ev.term)
			}
		}
	}
	if starts < len(steps)+1 {
		t.Errorf("%d children started, want at least %d (one per step and the first)", starts, len(steps)+1)
	}
}

// TestExecExitPolicy: under --on-child-exit=exit, a child that exits on its
// own makes incumbent release the lease and exit with the child's code.
func TestExecExitPolicy(t *testing.T) {
	p := sidecar(t, "exit-policy", "xp-a", nil, "--on-child-exit=exit", "--", "sh", "-c", "exit 7")
	if code := p.wait(); code != 7 {
		t.Errorf("exit code %d, want the child's 7", code)
	}
	p.waitLog("the release", msg("released the lease"))
	code, out, errOut := runCLI(t, nil, "status", "--kubeconfig="+kubeconfig, "-n", "default", "--lease=exit-policy", "-o", "json")
	if code != 0 || !strings.Contains(out, `"holder": ""`) {
		t.Errorf("after the exit: exit %d\n%s%s", code, out, errOut)
	}
}
