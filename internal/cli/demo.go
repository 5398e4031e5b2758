package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/file"
)

// demoWork is the workload each demo replica runs while it leads.
const demoWork = `exec 2>/dev/null
echo "  [$INCUMBENT_IDENTITY] work started, fencing token $INCUMBENT_TERM"
trap 'echo "  [$INCUMBENT_IDENTITY] work stopped"; exit 0' TERM
while :; do sleep 0.1; done`

type demoOptions struct {
	replicas int
	dir      string
	binary   string
}

func newDemoCmd(e *Env) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show an election on this machine: replicas on a lease file, a crash and a graceful hand-over",
		Long: `Start a few 'incumbent run --backend file' replicas of a small shell workload on one lease
file, show who leads, kill the leader with SIGKILL (no release: the others wait one lease
duration), then stop the next leader with SIGTERM (it stops its work and releases: the
hand-over takes milliseconds), and stop everything. Needs no cluster; takes about 15 seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return failure(o.run(cmd.Context(), e.Stdout)) },
	}
	cmd.Flags().IntVar(&o.replicas, "replicas", 3, "how many replicas to start (2 to 9)")
	cmd.Flags().StringVar(&o.dir, "file-dir", "", "folder of the lease file (default: a new temporary folder)")
	cmd.Flags().StringVar(&o.binary, "incumbent", "", "the incumbent binary the replicas run (default: this one)")
	return cmd
}

// demo timings: short, so that the crash take-over is quick to watch.
var demoTimings = []string{"--lease-duration", "3s", "--renew-deadline", "2s", "--retry-period", "500ms", "--grace", "500ms"}

func (o *demoOptions) run(ctx context.Context, out io.Writer) error {
	if o.replicas < 2 || o.replicas > 9 {
		return usagef("--replicas must be between 2 and 9, got %d", o.replicas)
	}
	if o.binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary: %w", err)
		}
		o.binary = exe
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "incumbent-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	st, err := file.New(o.dir, "demo")
	if err != nil {
		return usage(err)
	}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	replicas := map[string]*exec.Cmd{}
	start := func(id string) error {
		args := append([]string{"run", "--backend", "file", "--file-dir", o.dir, "--lease", "demo",
			"--identity", id, "--http-addr", "", "--control-addr", "", "--log-level", "error"}, demoTimings...)
		cmd := exec.Command(o.binary, append(args, "--", "/bin/sh", "-c", demoWork)...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
		replicas[id] = cmd
		return nil
	}
	defer func() {
		for _, c := range replicas {
			c.Process.Kill()
			c.Wait()
		}
	}()
	stop := func(id string, sig syscall.Signal) {
		c := replicas[id]
		delete(replicas, id)
		c.Process.Signal(sig)
		c.Wait()
	}

	obs := election.NewObserver(st, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	go obs.Run(octx)
	statuses, unsubscribe := obs.Subscribe()
	defer unsubscribe()
	// nextLeader waits until someone other than not leads, and has recorded
	// its term's token (it does with its first renewal, at once).
	nextLeader := func(not string) (election.Status, error) {
		limit := time.After(15 * time.Second)
		for {
			select {
			case s := <-statuses:
				if s.Leader != "" && s.Leader != not && s.Term != 0 {
					return s, nil
				}
			case <-limit:
				return election.Status{}, errors.New("no leader within 15s")
			case <-ctx.Done():
				return election.Status{}, ctx.Err()
			}
		}
	}
	pause := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	say("Starting %d replicas of a shell workload on the lease file %s/demo.json", o.replicas, o.dir)
	say("(lease duration 3s, renew deadline 2s, retry period 0.5s)")
	for i := 1; i <= o.replicas; i++ {
		if err := start(fmt.Sprintf("replica-%d", i)); err != nil {
			return err
		}
	}
	s, err := nextLeader("")
	if err != nil {
		return err
	}
	say("=> %s leads, term %d", s.Leader, s.Term)
	if err := pause(2 * time.Second); err != nil {
		return err
	}

	crashed := s.Leader
	say("\nSIGKILL %s: a crash, nothing is released; the others wait one lease duration", crashed)
	t0 := time.Now()
	stop(crashed, syscall.SIGKILL)
	s, err = nextLeader(crashed)
	if err != nil {
		return err
	}
	say("=> %s took over after %v, term %d", s.Leader, time.Since(t0).Round(time.Millisecond), s.Term)
	say("Restarting %s: it rejoins as a follower", crashed)
	if err := start(crashed); err != nil {
		return err
	}
	if err := pause(2 * time.Second); err != nil {
		return err
	}

	leaving := s.Leader
	say("\nSIGTERM %s: it stops its work, then releases; a follower sees that through its watch", leaving)
	c := replicas[leaving]
	delete(replicas, leaving)
	stopped := make(chan struct{})
	t0 = time.Now()
	go func() { c.Process.Signal(syscall.SIGTERM); c.Wait(); close(stopped) }()
	s, err = nextLeader(leaving)
	<-stopped
	if err != nil {
		return err
	}
	say("=> %s took over after %v, term %d", s.Leader, time.Since(t0).Round(time.Millisecond), s.Term)
	if err := pause(time.Second); err != nil {
		return err
	}

	say("\nStopping every replica")
	for id := range replicas {
		stop(id, syscall.SIGTERM)
	}
	say("Done. Try it by hand: incumbent run --backend file --lease demo -- <your command>")
	return nil
}
