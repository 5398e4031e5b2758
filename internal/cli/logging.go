package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/incumbent-io/incumbent/internal/logging"
)

// invocationLog is the logger of one invocation, from when its command
// built it (newLogger) to the end of Main.
type invocationLog struct {
	logger  *slog.Logger
	json    bool
	unroute func() // ends the routing of klog through logger
}

// newLogger builds the invocation's logger on e.Stderr from --log-format and
// --log-level; every command that logs builds it here. Until Main returns,
// klog (client-go) logs through the same handler, and Main reports a fatal
// error through it in JSON mode.
func (e *Env) newLogger(format, level string) (*slog.Logger, error) {
	cfg := logging.Config{Format: format, Level: level, InPod: e.Getenv("KUBERNETES_SERVICE_HOST") != ""}
	l, err := logging.New(e.Stderr, cfg)
	if err != nil {
		return nil, err
	}
	e.closeLog()
	e.log = invocationLog{logger: l, json: cfg.IsJSON(), unroute: logging.RouteKlog(l.Handler())}
	return l, nil
}

// closeLog ends the invocation's logging: klog is routed back.
func (e *Env) closeLog() {
	if e.log.unroute != nil {
		e.log.unroute()
	}
}

// fatal reports the error that ends the invocation with code. In JSON mode
// it is one record: level ERROR, msg "incumbent failed", err and
// exit_code. In text mode, and before the command built its logger (cobra's
// own usage errors, a bad --log-format or --log-level itself), it is a
// plain "incumbent: <err>" line, with a pointer to --help for a usage
// error.
func (e *Env) fatal(err error, code int) {
	e.terminationMessage(err, code)
	if e.log.json {
		r := slog.NewRecord(time.Now(), slog.LevelError, "incumbent failed", 0)
		r.AddAttrs(slog.String("err", err.Error()), slog.Int("exit_code", code))
		// Straight to the handler: no --log-level silences the last word.
		_ = e.log.logger.Handler().Handle(context.Background(), r)
		return
	}
	fmt.Fprintf(e.Stderr, "incumbent: %v\n", err)
	if code == ExitUsage {
		fmt.Fprintf(e.Stderr, "Run '%[1]s --help' or '%[1]s <command> --help' for usage.\n", e.displayName())
	}
}

// terminationMessageLimit is what the kubelet keeps of a termination
// message.
const terminationMessageLimit = 4096

// terminationMessage writes the fatal error where Kubernetes looks for a
// container's last words (terminationMessagePath, /dev/termination-log by
// default), so that kubectl describe pod shows why the sidecar exited. It
// writes only into a file that exists: the kubelet creates it in every
// container; elsewhere nothing is written.
func (e *Env) terminationMessage(err error, code int) {
	if e.TerminationLog == "" || !e.terminationMessages {
		return
	}
	if _, serr := os.Stat(e.TerminationLog); serr != nil {
		return
	}
	msg := fmt.Sprintf("incumbent exited with code %d: %v\n", code, err)
	if len(msg) > terminationMessageLimit {
		msg = msg[:terminationMessageLimit]
	}
	_ = os.WriteFile(e.TerminationLog, []byte(msg), 0o644)
}
