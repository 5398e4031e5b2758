//go:build unix && !linux

package supervise

import "syscall"

// sysProcAttr puts the child in a process group of its own. Without Linux's
// parent-death signal, a child outlives a supervisor killed with SIGKILL.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// prepareReaping does nothing: without a subreaper, only the child itself
// is waited for, and its group is signalled only until it has exited.
func prepareReaping() error { return nil }
