package main

import (
	"os/exec"
	"syscall"
)

// setDeathSignal has the kernel kill cmd when its parent dies, however it
// dies: a worker never outlives the bench.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
