package e2e

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func portOpen(addr string) (bool, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		return true, nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false, nil
	}
	return false, err
}

// TestLeaderPortReleaseAndTransfer runs three sidecars with leader-only
// ports, then steps the leader down with `incumbent release` and hands the
// lease to a named candidate with `incumbent transfer`. At every stable
// point exactly the leader's port accepts connections, and a former leader's
// port is closed although its process still runs.
func TestLeaderPortReleaseAndTransfer(t *testing.T) {
	ids := []string{"lp-a", "lp-b", "lp-c"}
	ports := map[string]string{}
	var status string
	for _, id := range ids {
		ports[id] = freePort(t)
		p := sidecar(t, "lp", id, nil, "--leader-addr="+ports[id])
		if status == "" {
			status = p.statusAddr()
		}
	}
	kc := "--kubeconfig=" + kubeconfig
	// onlyOpen waits until leader's port accepts, then requires every other
	// port to refuse: their terms ended (and their ports closed) before the
	// lease could pass to leader.
	onlyOpen := func(leader string) {
		t.Helper()
		eventually(t, leader+"'s leader port opens", func() (bool, string) {
			ok, err := portOpen(ports[leader])
			return ok, "dial: " + errString(err)
		})
		for _, id := range ids {
			if id == leader {
				continue
			}
			if ok, err := portOpen(ports[id]); ok || err != nil {
				t.Errorf("%s's leader port is open (%v) while %s leads", id, err, leader)
			}
		}
	}
	var leader string
	eventually(t, "a leader", func() (bool, string) {
		leader = viewOf(t, status).Leader
		return leader != "", "no leader"
	})
	onlyOpen(leader)

	code, out, errOut := runCLI(t, nil, "release", kc, "-n", "default", "--lease=lp", "--wait=20s")
	if code != 0 || !strings.Contains(out, "asked "+leader) {
		t.Fatalf("incumbent release: exit %d\n%s%s", code, out, errOut)
	}
	var next string
	eventually(t, "a new leader after the release", func() (bool, string) {
		next = viewOf(t, status).Leader
		return next != "" && next != leader, "leader " + next
	})
	onlyOpen(next)

	var target string
	for _, id := range ids {
		if id != next {
			target = id
			break
		}
	}
	code, out, errOut = runCLI(t, nil, "transfer", kc, "-n", "default", "--lease=lp", "--to="+target, "--wait=20s")
	if code != 0 || !strings.Contains(out, "now held by "+target) {
		t.Fatalf("incumbent transfer --to %s: exit %d\n%s%s", target, code, out, errOut)
	}
	onlyOpen(target)

	// Refusals are clear.
	code, _, errOut = runCLI(t, nil, "transfer", kc, "-n", "default", "--lease=lp", "--to="+target)
	if code != 1 || !strings.Contains(errOut, `already held by "`+target+`"`) {
		t.Errorf("transfer to the holder: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCLI(t, nil, "release", kc, "-n", "default", "--lease=no-such-lease")
	if code != 1 || !strings.Contains(errOut, "lease default/no-such-lease") {
		t.Errorf("release of a missing lease: exit %d, %s", code, errOut)
	}
}

func errString(err error) string {
	if err == nil {
		return "refused"
	}
	return err.Error()
}
