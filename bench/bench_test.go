package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// The scale profile's workers are this test binary run again.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" {
		os.Exit(workerMain(os.Args[1:]))
	}
	// envtest logs through controller-runtime's logger, which complains
	// with a stack trace when a control plane starts more than 30s after
	// the process did (the second test's) without one set.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}

// A smoke run of the benchmark, so that it cannot rot: every section is
// measured for both implementations and the files are written.
func TestQuickBenchmark(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-out", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	report, err := run(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Graceful hand-over", "## Crash take-over", "## API cost", "## Scale", "## Footprint", "| incumbent |", "| client-go |"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	for _, f := range []string{"latest.md", "latest.svg"} {
		if _, err := os.Stat(filepath.Join(o.out, f)); err != nil {
			t.Error(err)
		}
	}
	t.Log("\n" + report)
}

func TestFlagsRejectBadInput(t *testing.T) {
	for _, args := range [][]string{{"-samples", "0"}, {"-scale", "ten"}, {"-scale", "-3"}, {"-cost-window", "-1s"}, {"-nope"},
		{"-only", "scale,nope"}, {"-scale-renew-interval", "9s"}, {"-scale-renew-interval", "-1s"}, {"-scale-limit", "0"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted bad input", args)
		}
	}
}

func TestFlagsChooseSections(t *testing.T) {
	o, err := parseFlags([]string{"-only", "scale", "-scale", "100", "-scale-window", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sections {
		if o.runs(s) != (s == "scale") {
			t.Errorf("-only scale: runs(%q) = %v", s, o.runs(s))
		}
	}
	specs := o.scaleSpecs(100)
	if len(specs) != 3 || specs[0].renewEvery() != 2*time.Second || specs[1].renewEvery() != 5*time.Second || specs[2].impl != "client-go" {
		t.Errorf("scale rows at 100: %+v", specs)
	}
	if o, _ := parseFlags(nil); !o.runs("graceful") || len(o.scaleSizes) != 2 || o.scaleSizes[1] != 10000 {
		t.Errorf("defaults: sections %v, scale sizes %v", o.sections, o.scaleSizes)
	}
}

// The scale profile's machinery at a tiny size, against the real API
// server: three worker processes per row, every election led by exactly
// one of them, each again after one is killed, no overlapping terms, the
// Leases deleted and no process left behind. Timings are not asserted.
func TestScaleProfile(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	se, err := newScaleEnv(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer se.close()
	const n = 3
	base := scaleSpec{n: n, prof: shortProfile, window: 2 * time.Second, limit: time.Minute}
	inc, longer, cg := base, base, base
	inc.impl, longer.impl, longer.interval, cg.impl = "incumbent", "incumbent", time.Second, "client-go"
	var rows []*scaleResult
	for _, spec := range []scaleSpec{inc, longer, cg} {
		t.Run(fmt.Sprintf("%s-every-%v", spec.impl, spec.renewEvery()), func(t *testing.T) {
			r := se.row(spec, t.Logf)
			rows = append(rows, r)
			if r.err != nil {
				t.Fatal(r.err)
			}
			sum := func(c [scaleWorkers]int) int { return c[0] + c[1] + c[2] }
			if r.allLed < 0 || r.neverLed != 0 || sum(r.leading) != n {
				t.Errorf("all led after %v, %d never, leaders per worker %v: want every one of %d elections led by one worker", r.allLed, r.neverLed, r.leading, n)
			}
			if !r.steady || r.requestsPS <= 0 {
				t.Errorf("steady state measured %v, %.1f lease requests/s", r.steady, r.requestsPS)
			}
			for w := range scaleWorkers {
				if r.baseRSS[w] <= 0 || r.rss[w] <= 0 || r.conns[w] < 1 {
					t.Errorf("worker %d: RSS %d then %d bytes, %d connections to the API server", w, r.baseRSS[w], r.rss[w], r.conns[w])
				}
			}
			if !r.crashed || r.victimLed != r.leading[r.victim] || r.victimLed == 0 {
				t.Errorf("killed worker %d, which led %d elections (leaders per worker %v)", r.victim, r.victimLed, r.leading)
			}
			if r.reLed < 0 || r.notReLed != 0 || sum(r.after) != n || r.after[r.victim] != 0 {
				t.Errorf("after the kill: all led again after %v, %d not, leaders per worker %v", r.reLed, r.notReLed, r.after)
			}
			if r.overlaps != 0 || len(r.errs) != 0 {
				t.Errorf("%d overlapping terms, candidates stopped: %q", r.overlaps, r.errs)
			}
			ns := fmt.Sprintf("bench-scale-%d", se.seq)
			leases, err := se.cs.CoordinationV1().Leases(ns).List(context.Background(), metav1.ListOptions{})
			if err != nil || len(leases.Items) != 0 {
				t.Errorf("the row's Leases after it: %v, %v", leases, err)
			}
			live.mu.Lock()
			left := len(live.ws)
			live.mu.Unlock()
			if left != 0 {
				t.Errorf("%d workers left running", left)
			}
		})
	}
	var b strings.Builder
	scaleMarkdown(&b, rows)
	if !strings.Contains(b.String(), "| incumbent | 500ms | 3 × 3 |") || !strings.Contains(b.String(), "| client-go |") {
		t.Errorf("scale table:\n%s", b.String())
	}
	t.Log("\n" + b.String())
}

// A worker leaves as soon as its stdin ends, as when the bench is gone
// (besides the parent-death signal on Linux), without a request: the
// kubeconfig names no server.
func TestWorkerExitsWhenStdinEnds(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: x, cluster: {server: \"https://127.0.0.1:1\"}}]\nusers: [{name: x, user: {}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\ncurrent-context: x\n"), 0o600)
	tr := newScaleTracker(1)
	w, err := startWorker(workerFlags{impl: "incumbent", kubeconfig: kc, namespace: "x", identity: "w0", elections: 1,
		lease: 15 * time.Second, renew: 10 * time.Second, retry: 2 * time.Second, grace: 4 * time.Second}, 0, tr)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.ready:
	case <-time.After(time.Minute):
		t.Fatal("worker not ready")
	}
	w.stdin.Close() // as when the parent is gone
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		w.kill()
		t.Fatal("worker still running 30s after its stdin ended")
	}
	if err := syscall.Kill(w.pid(), 0); err == nil {
		t.Errorf("worker %d still exists", w.pid())
	}
}
