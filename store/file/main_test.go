//go:build unix

package file_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
)

// helperEnv, when set, makes the test binary act as one of the helper
// processes below instead of running tests.
const helperEnv = "INCUMBENT_FILE_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helper(mode); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper runs one helper process. Its lease is named by the environment
// (HELPER_DIR, HELPER_NAME).
func helper(mode string) error {
	dir, name := os.Getenv("HELPER_DIR"), os.Getenv("HELPER_NAME")
	switch mode {
	case "new":
		// Open the store and report the error: used to check permissions
		// as an unprivileged user.
		_, err := file.New(dir, name)
		fmt.Println(err)
		if !errors.Is(err, store.ErrPermission) {
			return fmt.Errorf("want an error wrapping store.ErrPermission, got %v", err)
		}
		return nil
	case "increment":
		n, err := strconv.Atoi(os.Getenv("HELPER_COUNT"))
		if err != nil {
			return err
		}
		s, err := file.New(dir, name)
		if err != nil {
			return err
		}
		// Start when told to, so that all helpers race.
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fmt.Errorf("wait for the start signal: %w", err)
		}
		conflicts := 0
		for done := 0; done < n; {
			ok, err := increment(s)
			if err != nil {
				return err
			}
			if ok {
				done++
			} else {
				conflicts++
			}
		}
		fmt.Printf("%d %d\n", n, conflicts)
		return nil
	case "hold":
		// Take the lease's lock as a writer does, say so, and hold it
		// until stdin closes (a test stops this process in between).
		_, unlock, err := file.LockFile(context.Background(), filepath.Join(dir, name+".lock"))
		if err != nil {
			return err
		}
		fmt.Println("locked")
		if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
			unlock()
			return fmt.Errorf("wait for stdin to close: %w", err)
		}
		unlock()
		return nil
	case "writeloop":
		// Write as fast as possible, reporting each write once it is done,
		// until killed.
		s, err := file.New(dir, name)
		if err != nil {
			return err
		}
		for {
			ok, err := increment(s)
			if err != nil {
				return err
			}
			if ok {
				fmt.Println("w")
			}
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// increment adds one to the record's transitions counter with a
// compare-and-set, and reports false when another writer won the race.
func increment(s *file.Store) (bool, error) {
	ctx := context.Background()
	rec, err := s.Get(ctx)
	if err != nil {
		return false, err
	}
	rec.Transitions++
	rec.Holder = "pid-" + strconv.Itoa(os.Getpid())
	// A long field, so that a write takes more than one page.
	rec.TransferTo = longName
	_, err = s.Update(ctx, rec)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrConflict):
		return false, nil
	}
	return false, err
}

var longName = func() string {
	b := make([]byte, 5000)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return string(b)
}()
