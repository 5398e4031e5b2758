//go:build node

// Package node is the real-node tier: every sidecar pattern of incumbent in
// real Pods on a real kubelet (containerd + runc), side by side with a
// client-go-based sidecar. It needs root and is behind the build tag node:
//
//	sudo go test -tags node -count=1 -timeout 40m ./test/node/
//
// TestMain builds the images (incumbent's own, from hack/image, and the
// tier's workloads from ./nodeapp and ../chaos/child), starts the cluster
// (./kubenode) in /var/tmp/incumbent-node, and tears it down at the end,
// also on SIGINT/SIGTERM and shortly before -test.timeout. A run killed
// outright is cleaned up by the next one. -node.report writes the measured
// figures to test/node/results/latest.md.
package node

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/test/node/kubenode"
)

var (
	reportFlag = flag.Bool("node.report", false, "write the figures to test/node/results/latest.md")
	deletions  = flag.Int("node.deletions", 20, "leader pod deletions to time per pattern")
)

// The cluster every test runs on, and what TestMain built for it.
var (
	node      *kubenode.Node
	workDir   string // /var/tmp/incumbent-node-work: binaries, images, pod logs
	incBinary string // incumbent, for the CLI (status, rbac, inject)
	results   = newReport()
)

// Images on the node, never pulled.
const (
	incumbentImage = "ghcr.io/incumbent-io/incumbent:v0.0.0-node-test"
	appImage       = "incumbent.test/app:1"
)

const nodeDir = "/var/tmp/incumbent-node"

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	t0 := time.Now()
	// Until the node is up, a signal cancels its start, and Start undoes
	// what it did; from then on, the teardown below handles it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	started := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			logf("node tier: signal %s: cancelling the start", s)
			cancelStart()
		case <-started:
		}
	}()
	// The work folder is beside the node's, not in it: Start wipes that.
	workDir = nodeDir + "-work"
	images, err := buildImages(startCtx, workDir)
	if err != nil {
		logf("node tier: build the images: %v", err)
		return 1
	}
	logf("node tier: images built in %v", time.Since(t0).Round(time.Millisecond))
	n, err := kubenode.Start(startCtx, kubenode.Options{Dir: nodeDir, Images: images, Log: logf})
	close(started)
	if err != nil {
		logf("node tier: %v", err)
		return 1
	}
	if startCtx.Err() != nil { // a signal came as Start returned
		_ = n.Stop()
		return 1
	}
	node = n
	logf("node tier: cluster up %v after the start", time.Since(t0).Round(time.Millisecond))
	results.note("the cluster was up %v after the tier started (images built, binaries checked, node Ready)", time.Since(t0).Round(time.Second))

	// Tear down on a signal, and before the test binary's own timeout
	// panics (which would skip every deferred call).
	stop := make(chan struct{})
	teardown := func(why string) error {
		logf("node tier: %s: tearing the node down", why)
		t := time.Now()
		err := n.Stop()
		if err != nil {
			logf("node tier: %v", err)
		}
		logf("node tier: teardown took %v", time.Since(t).Round(time.Millisecond))
		return err
	}
	var deadline <-chan time.Time
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			margin := min(d/10, 2*time.Minute)
			deadline = time.After(d - time.Since(t0) - margin)
		}
	}
	go func() {
		select {
		case s := <-sigs:
			_ = teardown("signal " + s.String())
			os.Exit(1)
		case <-deadline:
			_ = teardown("the test timeout is near")
			buf := make([]byte, 1<<20)
			os.Stderr.Write(buf[:runtime.Stack(buf, true)])
			os.Exit(1)
		case <-stop:
		}
	}()

	code := m.Run()
	close(stop)
	if *reportFlag {
		if err := results.write(); err != nil {
			logf("node tier: write the report: %v", err)
			code = 1
		}
	}
	results.print(os.Stderr)
	// A teardown that leaves anything on the host fails the run.
	if err := teardown("done"); err != nil {
		code = 1
	}
	logf("node tier: %v in all", time.Since(t0).Round(time.Millisecond))
	return code
}
