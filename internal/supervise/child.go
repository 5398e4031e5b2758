//go:build unix

package supervise

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/incumbent-io/incumbent/election"
)

// child is one run of the command.
type child struct {
	proc    *os.Process
	pid     int // also its process group ID
	started time.Time
	exited  chan struct{} // closed once the main process has been reaped
	status  syscall.WaitStatus
	gone    chan struct{} // closed once every process of the group we can wait for has been reaped
}

// start launches the command for term. The goroutine that forks stays
// locked to its OS thread until the child is reaped, because Linux delivers
// the parent-death signal when the forking thread exits.
func (s *Supervisor) start(term *election.Term) (*child, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	c := &child{exited: make(chan struct{}), gone: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		proc, err := os.StartProcess(s.path, s.cfg.Command, &os.ProcAttr{
			Env:   s.env(term),
			Files: []*os.File{devnull, s.cfg.Stdout, s.cfg.Stderr},
			Sys:   sysProcAttr(),
		})
		if err != nil {
			started <- err
			return
		}
		c.proc, c.pid, c.started = proc, proc.Pid, time.Now()
		s.setCurrent(c) // from now on signals are forwarded to it
		started <- nil
		c.reap()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", s.path, err)
	}
	s.log.Info("child started", "pid", c.pid, "token", term.Token())
	return c, nil
}

// reap waits for the main process, then for every other process of its
// group that is (or, on Linux, becomes through the subreaper flag) a child
// of this process.
func (c *child) reap() {
	defer close(c.gone)
	for {
		_, err := syscall.Wait4(c.pid, &c.status, 0, nil)
		if err == nil || !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	close(c.exited)
	for {
		var ws syscall.WaitStatus
		_, err := syscall.Wait4(-c.pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: none left
			break
		}
	}
	// The os.Process handle (a pidfd on Linux) is no longer needed; its
	// process was reaped above.
	_ = c.proc.Release()
}

// code is the main process's exit code, 128+signal when it was killed.
func (c *child) code() int {
	switch {
	case c.status.Exited():
		return c.status.ExitStatus()
	case c.status.Signaled():
		return 128 + int(c.status.Signal())
	}
	return 1
}

// signal sends sig to the child's process group and to the main process
// itself (in case it left the group). The main process is signalled through
// its os.Process handle, which never reaches a recycled PID. The group is
// signalled only until it is known to be gone; Linux allocates PIDs
// cyclically, so its ID is not reused in between.
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.gone:
		return
	default:
	}
	_ = c.proc.Signal(sig)
	_ = syscall.Kill(-c.pid, sig)
}

// stop ends the child's group: SIGTERM, then SIGKILL KillReserve before the
// end of the grace period, and returns once it has been reaped.
func (s *Supervisor) stop(c *child) {
	c.signal(syscall.SIGTERM)
	killAt := time.NewTimer(s.cfg.Grace - KillReserve(s.cfg.Grace))
	defer killAt.Stop()
	select {
	case <-c.gone:
		s.log.Info("child stopped", "pid", c.pid, "exit_code", c.code())
		return
	case <-killAt.C:
	}
	s.log.Warn("the child did not stop within the grace period: sending SIGKILL", "pid", c.pid, "grace", s.cfg.Grace)
	c.signal(syscall.SIGKILL)
	slow := time.NewTimer(time.Second)
	defer slow.Stop()
	select {
	case <-c.gone:
	case <-slow.C:
		s.log.Error("the child's process group is still not gone one second after SIGKILL (uninterruptible sleep?); waiting",
			"pid", c.pid)
		<-c.gone
	}
	s.log.Info("child killed", "pid", c.pid)
}
