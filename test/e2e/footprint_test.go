package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procSample is what /proc says about one process at one moment.
type procSample struct {
	rssKB  int64
	anonKB int64 // of which anonymous (heap, stacks); the rest is mapped files (the binary)
	ticks  int64 // user + system CPU time, in clock ticks
	at     time.Time
}

func sampleProc(t *testing.T, pid int) procSample {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var s procSample
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKB, err = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rollup), "\n") {
		if v, ok := strings.CutPrefix(line, "Anonymous:"); ok {
			s.anonKB, err = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may contain spaces).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || s.rssKB == 0 {
		t.Fatalf("cannot parse /proc/%d: %v %v", pid, err1, err2)
	}
	s.ticks, s.at = utime+stime, time.Now()
	return s
}

// TestIdleFootprint measures the resident memory and CPU of an idle leader
// and an idle follower (default timings) from /proc, and logs them. The
// window is INCUMBENT_FOOTPRINT_SECONDS (default 10). It asserts nothing
// about the numbers: they are for reports.
func TestIdleFootprint(t *testing.T) {
	window := 10 * time.Second
	if v := os.Getenv("INCUMBENT_FOOTPRINT_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("INCUMBENT_FOOTPRINT_SECONDS=%q: want a positive number of seconds", v)
		}
		window = time.Duration(n) * time.Second
	}
	args := []string{"run", "--kubeconfig=" + kubeconfig, "-n", "default", "--lease=idle", "--http-addr=127.0.0.1:0", "--log-format=json"}
	leader := start(t, "idle-leader", nil, append(args, "--identity=idle-a")...)
	leader.waitLog("leadership", msg("started leading"))
	follower := start(t, "idle-follower", nil, append(args, "--identity=idle-b")...)
	eventually(t, "the follower sees the leader", func() (bool, string) {
		v := viewOf(t, follower.statusAddr())
		return v.Leader == "idle-a", v.Leader
	})
	// Let start-up settle, then measure.
	settle := time.NewTimer(2 * time.Second)
	<-settle.C
	l0, f0 := sampleProc(t, leader.cmd.Process.Pid), sampleProc(t, follower.cmd.Process.Pid)
	measure := time.NewTimer(window)
	<-measure.C
	l1, f1 := sampleProc(t, leader.cmd.Process.Pid), sampleProc(t, follower.cmd.Process.Pid)
	const hz = 100 // USER_HZ on Linux
	for _, r := range []struct {
		role   string
		s0, s1 procSample
	}{{"leader", l0, l1}, {"follower", f0, f1}} {
		cpu := float64(r.s1.ticks-r.s0.ticks) / hz
		t.Logf("idle %s over %v (race detector: %v): RSS %.1f MiB (anonymous %.1f MiB), CPU %.2fs = %.2f%% of one core",
			r.role, r.s1.at.Sub(r.s0.at).Round(time.Millisecond), raceEnabled, float64(r.s1.rssKB)/1024,
			float64(r.s1.anonKB)/1024, cpu,
			100*cpu/r.s1.at.Sub(r.s0.at).Seconds())
	}
	if v := viewOf(t, follower.statusAddr()); v.Leader != "idle-a" || !viewOf(t, leader.statusAddr()).IsLeader {
		t.Errorf("leadership changed while idle: %+v", v)
	}
}
