//go:build unix

// Package supervise runs a command as a child process only while this
// candidate leads: the exec mode of the incumbent sidecar.
//
// For each term, Lead starts the command with the fencing token in its
// environment, in a process group of its own. When the term ends it sends
// SIGTERM to that group, SIGKILL to whatever is left of it shortly before the
// grace period ends, and returns only once the child (and, on Linux, every
// process of its group) has been reaped, so that the elector releases the
// lease only after the work is gone.
//
// Processes that leave the child's process group (setsid, setpgid) escape
// supervision, as they would under any supervisor. On Linux the child also
// receives SIGKILL if the supervising process dies (parent-death signal), so
// that killing incumbent itself with SIGKILL does not leave a leader's child
// running; the child's own descendants are not covered by that signal (in a
// container, the container's end kills them).
package supervise

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// Policy says what happens when the child exits on its own while this
// candidate still leads.
type Policy string

const (
	// Release ends the term and releases the lease, so that another
	// replica runs the work (or this one, once it has held back for one
	// lease duration and nobody else took the lease). The default: a
	// crashed child fails over instead of crash-looping in place.
	Release Policy = "release"
	// Restart starts the child again within the same term, after a delay
	// that doubles from 1s up to 30s while it keeps exiting.
	Restart Policy = "restart"
	// Exit ends the term, releases the lease, and makes incumbent exit with
	// the child's exit code (128+signal if it was killed), for a container
	// restart policy to act on.
	Exit Policy = "exit"
)

// Policies lists the accepted policies.
var Policies = []Policy{Release, Restart, Exit}

// ParsePolicy accepts "release", "restart" or "exit".
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown policy %q (want release, restart or exit)", s)
}

// Environment variables set for the child.
const (
	EnvTerm      = "INCUMBENT_TERM"      // the fencing token of the term
	EnvIdentity  = "INCUMBENT_IDENTITY"  // the candidate's identity
	EnvLease     = "INCUMBENT_LEASE"     // the lease name
	EnvNamespace = "INCUMBENT_NAMESPACE" // the lease namespace, when there is one
)

// Restart delays.
const (
	restartMin   = time.Second
	restartMax   = 30 * time.Second
	restartReset = time.Minute // a child that ran this long starts the delays afresh
)

// Config describes the child.
type Config struct {
	// Command is the program and its arguments. Required. A program name
	// without a slash is looked up in PATH once, by New.
	Command []string
	// Env is the child's base environment; nil means this process's.
	// The INCUMBENT_* variables above are set on top of it.
	Env []string
	// Stdout and Stderr receive the child's output; nil means this
	// process's own. The child's stdin is /dev/null: a child in its own
	// process group cannot read a terminal anyway.
	Stdout, Stderr *os.File
	// Lease and Namespace are passed to the child.
	Lease, Namespace string
	// Grace is how long the child's group gets between SIGTERM and the end
	// of the grace period; SIGKILL is sent KillReserve(Grace) before its
	// end, so that the child is reaped within it. Required.
	Grace time.Duration
	// OnExit is the policy for a child that exits while leading. Default
	// Release.
	OnExit Policy
	// Exit is called with the child's exit code under the Exit policy,
	// before the term ends. Required with that policy.
	Exit func(code int)
	// Logger receives the supervisor's logs. Default slog.Default().
	Logger *slog.Logger
}

// KillReserve is how long before the end of the grace period SIGKILL is
// sent: a tenth of it, at most 500ms.
func KillReserve(grace time.Duration) time.Duration { return min(grace/10, 500*time.Millisecond) }

// Supervisor is a sidecar duty: Lead runs the child for one term. Signal
// forwards signals to it.
type Supervisor struct {
	cfg  Config
	path string
	log  *slog.Logger

	mu  sync.Mutex
	cur *child
}

// New validates cfg and resolves the program.
func New(cfg Config) (*Supervisor, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("supervise: a command is required")
	}
	if cfg.Grace <= 0 {
		return nil, fmt.Errorf("supervise: grace must be positive, got %v", cfg.Grace)
	}
	if cfg.OnExit == "" {
		cfg.OnExit = Release
	}
	if _, err := ParsePolicy(string(cfg.OnExit)); err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	if cfg.OnExit == Exit && cfg.Exit == nil {
		return nil, errors.New("supervise: the exit policy needs an Exit function")
	}
	path, err := exec.LookPath(cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("supervise: command %q: %w", cfg.Command[0], err)
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := prepareReaping(); err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	return &Supervisor{cfg: cfg, path: path, log: cfg.Logger.With("command", cfg.Command[0])}, nil
}

// ErrNoChild is returned by Signal when no child is running.
var ErrNoChild = errors.New("no child process is running")

// Signal forwards sig to the running child (its main process, not its
// group), or returns ErrNoChild.
func (s *Supervisor) Signal(sig os.Signal) error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return ErrNoChild
	}
	select {
	case <-c.exited:
		return ErrNoChild
	default:
	}
	if err := c.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return ErrNoChild
		}
		return fmt.Errorf("forward %v to child %d: %w", sig, c.pid, err)
	}
	return nil
}

// Lead runs the child for the duration of term; see the package doc.
func (s *Supervisor) Lead(term *election.Term) {
	delay := restartMin
	for {
		c, err := s.start(term)
		code := 0
		if err != nil {
			s.log.Error("cannot start the child", "err", err, "token", term.Token())
			code = 127
		} else {
			select {
			case <-term.Done():
				s.log.Info("term ended: stopping the child", "pid", c.pid, "reason", term.Err())
				s.stop(c)
				s.setCurrent(nil)
				return
			case <-c.exited:
			}
			code = c.code()
			s.log.Warn("the child exited while leading", "pid", c.pid, "exit_code", code, "policy", s.cfg.OnExit,
				"ran_for", time.Since(c.started).Round(time.Millisecond))
			s.stop(c) // the rest of its process group, if any
			s.setCurrent(nil)
			if time.Since(c.started) >= restartReset {
				delay = restartMin
			}
		}
		switch s.cfg.OnExit {
		case Exit:
			s.cfg.Exit(code)
			term.Resign()
			return
		case Restart:
			s.log.Info("restarting the child", "after", delay)
			select {
			case <-term.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, restartMax)
		default:
			term.Resign()
			return
		}
	}
}

func (s *Supervisor) setCurrent(c *child) {
	s.mu.Lock()
	s.cur = c
	s.mu.Unlock()
}

// env returns the child's environment for term.
func (s *Supervisor) env(term *election.Term) []string {
	set := map[string]string{
		EnvTerm:     strconv.FormatInt(term.Token(), 10),
		EnvIdentity: term.Identity(),
		EnvLease:    s.cfg.Lease,
	}
	if s.cfg.Namespace != "" {
		set[EnvNamespace] = s.cfg.Namespace
	}
	out := make([]string, 0, len(s.cfg.Env)+len(set))
	for _, kv := range s.cfg.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, replaced := set[k]; !replaced {
			out = append(out, kv)
		}
	}
	for _, k := range []string{EnvTerm, EnvIdentity, EnvLease, EnvNamespace} {
		if v, ok := set[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	return out
}
