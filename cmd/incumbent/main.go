// Command incumbent is leader election for any process: a Kubernetes
// sidecar (status API, leader-only port, exec, pod labels), a plain process
// supervisor, and an operator CLI. See `incumbent --help` and
// docs/sidecar.md.
package main

import (
	"context"
	"os"

	"github.com/incumbent-io/incumbent/internal/cli"
	"github.com/incumbent-io/incumbent/internal/sidecar"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version string

func main() {
	// SIGTERM or SIGINT at any moment, even during startup, ends the
	// command in order instead of killing it; the context's cause names the
	// signal.
	ctx, stop := sidecar.NotifyShutdown(context.Background())
	code := cli.Main(ctx, cli.Env{Args: os.Args[1:], Version: version})
	stop()
	os.Exit(code)
}
