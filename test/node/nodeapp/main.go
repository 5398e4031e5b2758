// Command nodeapp is the workload of the real-node tier's pods (test/node),
// built into the tier's own images; one binary, one role per subcommand:
//
//	nodeapp pause      the pod sandbox: waits for SIGTERM or SIGINT
//	nodeapp serve      an application that serves its pod name on :8080 and
//	                   exits at once on SIGTERM (label and leader-port modes)
//	nodeapp follow     an application of the status-API pattern: it follows
//	                   its sidecar's /v1/watch and acts only while told it
//	                   leads, reporting each term to the checker
//	nodeapp clientgo   a leader-election sidecar built on client-go's
//	                   leaderelection (ReleaseOnCancel), that labels its pod
//	                   incumbent.io/role=leader while leading: the baseline
//
// follow reports to the checker at CHECKER (an http:// URL on the node's
// bridge, served by the test) the protocol of test/chaos/checker:
// POST /begin, /write every 20ms, /end, each with token and id. When told
// it no longer leads (or on SIGTERM) it takes STOP_DELAY to stop (default
// 0), ends its term, and acknowledges the step-down to the sidecar's
// control endpoint (POST CONTROL/v1/stepped-down), so that the sidecar
// releases the lease only once it has stopped. On SIGTERM it finally
// reports POST CHECKER/exit?id=I&sidecar=up|down: whether its sidecar still
// answered once it had stopped.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nodeapp pause|serve|follow|clientgo")
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var err error
	switch os.Args[1] {
	case "pause":
		<-sigs
	case "serve":
		err = serve(sigs)
	case "follow":
		err = follow(sigs)
	case "clientgo":
		err = clientGo(sigs)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeapp:", err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
