// Command child is the workload the end-to-end tests run under
// `incumbent run -- child`. It proves that no two children ever run at once:
// on start it takes an exclusive, non-blocking flock on a shared lock file,
// which the kernel releases only when the process is gone (even after
// SIGKILL). It appends one line per event to a shared log:
//
//	start <identity> <term> <pid> <unix-nanos>
//	OVERLAP <identity> <term> <pid> <unix-nanos>   (the lock was held by another child)
//	end <identity> <term> <pid> <unix-nanos>       (on SIGTERM, unless stubborn)
//
// With CHILD_STUBBORN_ODD_TERMS=1 it ignores SIGTERM in odd terms, so that
// incumbent has to SIGKILL it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
}

func run() error {
	lockPath, logPath := os.Getenv("CHILD_LOCK"), os.Getenv("CHILD_LOG")
	if lockPath == "" || logPath == "" {
		return fmt.Errorf("CHILD_LOCK and CHILD_LOG must be set")
	}
	id, term := os.Getenv("INCUMBENT_IDENTITY"), os.Getenv("INCUMBENT_TERM")
	stubborn := false
	if n, err := strconv.ParseInt(term, 10, 64); err == nil && n%2 == 1 && os.Getenv("CHILD_STUBBORN_ODD_TERMS") == "1" {
		stubborn = true
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	line := func(what string) error {
		_, err := fmt.Fprintf(logf, "%s %s %s %d %d\n", what, id, term, os.Getpid(), time.Now().UnixNano())
		return err
	}
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = line("OVERLAP")
		return fmt.Errorf("the lock is held by another child: %w", err)
	}
	if err := line("start"); err != nil {
		return err
	}
	fmt.Printf("child %s running in term %s (stubborn=%v)\n", id, term, stubborn)
	for range sigs {
		if !stubborn {
			break
		}
		fmt.Printf("child %s ignoring SIGTERM\n", id)
	}
	return line("end")
}
