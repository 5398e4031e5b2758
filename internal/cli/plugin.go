package cli

import (
	"github.com/spf13/cobra"
)

// Executable names under which kubectl runs incumbent. A binary installed
// (or linked) under either name behaves as below; under any other name it
// is plain incumbent.
const (
	// KubectlPlugin is the name kubectl looks for on PATH to run
	// `kubectl incumbent ARGS...`: it runs `kubectl-incumbent ARGS...`.
	// Under this name the help says `kubectl incumbent`.
	KubectlPlugin = "kubectl-incumbent"
	// KubectlComplete is the name kubectl (1.26 and later) looks for on
	// PATH to complete the arguments of `kubectl incumbent`: it runs
	// `kubectl_complete-incumbent ARGS... PARTIAL`, which answers as
	// `incumbent __complete ARGS... PARTIAL` does. A symbolic link to the
	// binary under this name is enough.
	KubectlComplete = "kubectl_complete-incumbent"
)

// asPlugin reports whether kubectl runs this invocation.
func (e *Env) asPlugin() bool { return e.Program == KubectlPlugin || e.Program == KubectlComplete }

// displayName is how the user typed the command: "kubectl incumbent" for
// the plugin, else "incumbent".
func (e *Env) displayName() string {
	if e.asPlugin() {
		return "kubectl incumbent"
	}
	return "incumbent"
}

// args are the arguments cobra parses: e.Args, after __complete when
// kubectl asks for completions.
func (e *Env) args() []string {
	if e.Program == KubectlComplete {
		return append([]string{cobra.ShellCompRequestCmd}, e.Args...)
	}
	return e.Args
}

// nameRoot makes the help and usage lines say what the user typed, as
// cobra advises for kubectl plugins.
func nameRoot(root *cobra.Command, e *Env) {
	if !e.asPlugin() {
		return
	}
	root.Use = KubectlPlugin
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations[cobra.CommandDisplayNameAnnotation] = e.displayName()
}
