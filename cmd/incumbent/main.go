// Command incumbent is leader election for any process: a Kubernetes
// sidecar (status API, leader-only port, exec, pod labels), a plain process
// supervisor, and an operator CLI. See `incumbent --help` and
// docs/sidecar.md.
package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/incumbent-io/incumbent/internal/cli"
	"github.com/incumbent-io/incumbent/internal/sidecar"
)

// version and revision are set at link time (hack/image and hack/release
// do): -ldflags "-X main.version=v1.2.3 -X main.revision=COMMIT".
var version, revision string

func main() {
	if p, ok := gcPercent(os.Getenv); ok {
		debug.SetGCPercent(p)
	}
	// SIGTERM or SIGINT at any moment, even during startup, ends the
	// command in order instead of killing it; the context's cause names the
	// signal.
	ctx, stop := sidecar.NotifyShutdown(context.Background())
	// Installed as kubectl-incumbent, it is a kubectl plugin (see
	// cli.KubectlPlugin).
	code := cli.Main(ctx, cli.Env{Args: os.Args[1:], Program: filepath.Base(os.Args[0]), Version: version, Revision: revision})
	stop()
	os.Exit(code)
}

// defaultGCPercent is the GOGC incumbent runs with when the environment
// tunes neither GOGC nor GOMEMLIMIT. The idle sidecar's heap is about 1 MB
// live; Go's default (GOGC=100, with a 4 MB floor) lets it grow to 4 MB
// between collections, 50 to 2 MB: a leader idle for minutes holds about
// 1 MiB less (docs/sidecar.md, "Measured"), for a collection of a few
// milliseconds every half minute instead of every two. A busy sidecar (a
// live heap of 2.7 MB or more) collects twice as often as under GOGC=100,
// and its heap peaks at 1.5 times the live heap instead of 2; a smaller
// heap up to four times as often, each collection costing less.
const defaultGCPercent = 50

// gcPercent returns the GC percent to set, if any: defaultGCPercent, unless
// GOGC or GOMEMLIMIT is set (even to its default: the user chose).
func gcPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	return defaultGCPercent, true
}
