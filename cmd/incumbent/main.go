// Command incumbent is leader election for any process: a Kubernetes
// sidecar (status API, leader-only port, exec, pod labels), a plain process
// supervisor, and an operator CLI. See `incumbent --help` and
// docs/sidecar.md.
package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/incumbent-io/incumbent/internal/cli"
	"github.com/incumbent-io/incumbent/internal/sidecar"
)

// version and revision are set at link time (hack/image and hack/release
// do): -ldflags "-X main.version=v1.2.3 -X main.revision=COMMIT".
var version, revision string

func main() {
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
