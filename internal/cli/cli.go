// Package cli is the incumbent command line: `incumbent run` (the sidecar)
// and the operator commands status, watch, release, transfer, rbac and
// version. Every flag also reads an environment variable named after it
// (--lease-duration: INCUMBENT_LEASE_DURATION); a flag on the command line
// wins.
//
// Exit codes: 0 success (and after SIGTERM/SIGINT with the lease released),
// 1 failure at run time, 2 invalid or missing flags, arguments, environment
// values or configuration, 3 a permission the store refuses (the message
// names the verb and resource); `run` waits for a refused permission
// instead, unless --on-refused=exit. Under `--on-child-exit=exit`, `run`
// exits with the child's exit code. An unreachable store is never a reason to
// exit: run waits for it. A fatal error is also written to
// /dev/termination-log when that file exists (in a Kubernetes container),
// for kubectl describe pod.
package cli

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	// ExitOK: the command succeeded; run stopped in order.
	ExitOK = 0
	// ExitFailure: a failure at run time.
	ExitFailure = 1
	// ExitUsage: invalid flags, arguments, environment values or
	// configuration.
	ExitUsage = 2
	// ExitPermission: the store (the API server's RBAC, etcd's users, the
	// file system) refuses a permission the command needs; the message
	// names it. run exits so under --on-refused=exit (by default it waits
	// for the permission).
	ExitPermission = 3
)

// DefaultTerminationLog is Kubernetes' default terminationMessagePath.
const DefaultTerminationLog = "/dev/termination-log"

// ServiceAccountNamespaceFile is where a pod finds its namespace.
const ServiceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Env is the outside world of one invocation; tests replace parts of it.
type Env struct {
	// Args are the command-line arguments, without the program name.
	Args []string
	// Program is the base name the binary was run as. KubectlPlugin and
	// KubectlComplete make it a kubectl plugin; empty means incumbent.
	Program string
	// Getenv reads the environment. Default os.Getenv.
	Getenv func(string) string
	// Stdin is read by inject. Default os.Stdin.
	Stdin io.Reader
	// Stdout and Stderr receive output and logs. Default os.Stdout/os.Stderr.
	Stdout, Stderr io.Writer
	// Version is printed by `incumbent version` (set at link time).
	Version string
	// Revision is the commit the binary was built from (set at link
	// time); `incumbent version` prints it.
	Revision string
	// NamespaceFile is read for the namespace when no flag or variable
	// gives it. Default ServiceAccountNamespaceFile.
	NamespaceFile string
	// Hostname is the identity of last resort. Default os.Hostname.
	Hostname func() (string, error)
	// TerminationLog is where a fatal error is also written, if that file
	// exists (Kubernetes' terminationMessagePath). Default
	// DefaultTerminationLog.
	TerminationLog string

	// terminationMessages: a fatal error is also the container's
	// termination message. Only `run` sets it: it is what a container runs
	// (a preStop hook's withdraw must not leave a false one).
	terminationMessages bool

	log invocationLog // set by the command that builds its logger
}

func (e *Env) defaults() {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Stdin == nil {
		e.Stdin = os.Stdin
	}
	if e.Stdout == nil {
		e.Stdout = os.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = os.Stderr
	}
	if e.NamespaceFile == "" {
		e.NamespaceFile = ServiceAccountNamespaceFile
	}
	if e.Hostname == nil {
		e.Hostname = os.Hostname
	}
	if e.TerminationLog == "" {
		e.TerminationLog = DefaultTerminationLog
	}
}

// Main runs one invocation and returns its exit code.
func Main(ctx context.Context, e Env) int {
	e.defaults()
	defer e.closeLog()
	root := newRoot(&e)
	nameRoot(root, &e)
	registerCompletions(root, &e)
	root.SetArgs(e.args())
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	err := root.ExecuteContext(ctx)
	var ex *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ex) && ex.err == nil:
		return ex.code // a requested exit code, nothing to report
	case errors.As(err, &ex):
		e.fatal(ex.err, ex.code)
		return ex.code
	default:
		// Errors cobra raises itself: unknown commands and flags, bad
		// flag values, wrong argument counts.
		e.fatal(err, ExitUsage)
		return ExitUsage
	}
}

func newRoot(e *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "incumbent",
		Short: "Leader election for any process: a Kubernetes sidecar, a supervisor and an operator CLI",
		Long: `incumbent runs several replicas of a component and lets exactly one of them act at a time.

'incumbent run' is the sidecar: it campaigns for a lease and, while leading, serves the
status API, opens a leader-only port, runs a child process and labels its pod, as asked.
The other commands inspect and steer an election.

Every flag can also be set through an environment variable named after it, e.g.
--lease-duration as INCUMBENT_LEASE_DURATION; the command line wins.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error { return applyEnv(cmd, e.Getenv) },
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usage(err) })
	root.AddCommand(newRunCmd(e), newStatusCmd(e), newWatchCmd(e), newReleaseCmd(e), newTransferCmd(e),
		newRBACCmd(e), newFenceCmd(e), newVersionCmd(e), newDemoCmd(e), newWithdrawCmd(e), newInjectCmd(e), newCopyBinaryCmd(e))
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%q takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
