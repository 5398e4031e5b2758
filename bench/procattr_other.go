//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing where there is no parent-death signal: a
// worker still exits when its stdin (the parent's pipe) ends.
func setDeathSignal(*exec.Cmd) {}
