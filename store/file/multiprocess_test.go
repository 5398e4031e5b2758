//go:build unix

package file_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
)

// helperCmd returns a command running this test binary as a helper process
// on the lease dir/name.
func helperCmd(t *testing.T, mode, dir, name string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "HELPER_DIR="+dir, "HELPER_NAME="+name)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = &testLog{t: t, prefix: mode + " stderr: "}
	return cmd
}

type testLog struct {
	t      *testing.T
	prefix string
}

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(l.prefix + strings.TrimSpace(string(p)))
	return len(p), nil
}

// generation returns the write counter in a file store version.
func generation(t *testing.T, version string) int64 {
	t.Helper()
	g, _, ok := strings.Cut(version, ".")
	n, err := strconv.ParseInt(g, 10, 64)
	if !ok || err != nil {
		t.Fatalf("version %q is not GENERATION.INCARNATION", version)
	}
	return n
}

// Several OS processes race compare-and-set increments on one record; not
// one update may be lost.
func TestProcessesRaceWithoutLostUpdates(t *testing.T) {
	const procs, each = 4, 150
	dir := t.TempDir()
	s, err := file.New(dir, "counter")
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Create(context.Background(), store.Record{Holder: "nobody", LeaseDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	type proc struct {
		cmd   *exec.Cmd
		start io.WriteCloser
		out   strings.Builder
	}
	var ps []*proc
	for range procs {
		p := &proc{cmd: helperCmd(t, "increment", dir, "counter", "HELPER_COUNT="+strconv.Itoa(each))}
		p.cmd.Stdout = &p.out
		if p.start, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	began := time.Now()
	for _, p := range ps {
		io.WriteString(p.start, "go\n")
		p.start.Close()
	}
	conflicts := 0
	for i, p := range ps {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		var done, lost int
		if _, err := fmt.Sscan(p.out.String(), &done, &lost); err != nil {
			t.Fatalf("process %d printed %q: %v", i, p.out.String(), err)
		}
		if done != each {
			t.Fatalf("process %d made %d increments, want %d", i, done, each)
		}
		conflicts += lost
	}
	elapsed := time.Since(began)
	got, err := s.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Transitions != procs*each {
		t.Errorf("the counter is %d after %d successful increments: %d updates were lost", got.Transitions, procs*each, procs*each-int(got.Transitions))
	}
	if g, want := generation(t, got.Version), generation(t, created.Version)+procs*each; g != want {
		t.Errorf("generation %d, want %d (one per successful write)", g, want)
	}
	t.Logf("%d processes made %d increments with %d conflicts in %v (%v per successful write)",
		procs, procs*each, conflicts, elapsed.Round(time.Millisecond), (elapsed / (procs * each)).Round(time.Microsecond))
}

// A process writing in a tight loop is killed with SIGKILL, many times:
// after a random number of writes, and every other time as soon as its next
// temporary file appears (in the middle of a write). The record must always
// decode, and every write reported done must have survived.
func TestKilledWriterLeavesWholeRecord(t *testing.T) {
	const kills = 30
	dir := t.TempDir()
	s, err := file.New(dir, "crash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(context.Background(), store.Record{Holder: "nobody", LeaseDuration: time.Second}); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "crash.json.tmp")
	leftovers := 0
	var confirmed int64 // transitions reached by writes reported done
	for k := range kills {
		if k%2 == 1 {
			// A temporary file left by the last kill would be taken for
			// the next write's (the even rounds leave theirs, for the
			// next writer to replace).
			if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
		}
		cmd := helperCmd(t, "writeloop", dir, "crash")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for a random number of completed writes, then kill it
		// while it is in the middle of the next ones.
		want := 1 + rand.IntN(20)
		lines := bufio.NewScanner(out)
		for range want {
			if !lines.Scan() {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: the writer stopped before reporting %d writes: %v", k, want, lines.Err())
			}
		}
		confirmed += int64(want)
		if k%2 == 1 {
			// Aim at the middle of a write: kill as soon as the next
			// temporary file appears.
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(tmp); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("kill %d: the writer wrote no temporary file within 10s", k)
				}
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if _, err := os.Stat(tmp); err == nil {
			leftovers++
		}
		rec, err := s.Get(context.Background())
		if err != nil {
			t.Fatalf("kill %d: the record does not read back: %v", k, err)
		}
		if g := generation(t, rec.Version); rec.Transitions != g-1 {
			t.Fatalf("kill %d: counter %d at generation %d: a write was torn", k, rec.Transitions, g)
		}
		if rec.Transitions < confirmed {
			t.Fatalf("kill %d: counter %d, but %d writes were reported done", k, rec.Transitions, confirmed)
		}
		// Writes done after the last report count too.
		confirmed = rec.Transitions
	}
	t.Logf("%d kills; %d left a temporary file behind (killed mid-write); final counter %d", kills, leftovers, confirmed)
}
