//go:build unix

package file_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/store"
	"github.com/incumbent-io/incumbent/store/file"
)

func TestValidateName(t *testing.T) {
	for _, name := range []string{"a", "db", "0", "my-app.leader", "a-b-c.d-e.f9", strings.Repeat("x", file.MaxNameLength)} {
		if err := file.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "A", "Db", "a/b", "../x", "..", ".", "a..b", ".a", "a.", "-a", "a-", "a.-b", "a_b", "a b", "ä", "a\x00", strings.Repeat("x", file.MaxNameLength+1)} {
		if err := file.ValidateName(name); err == nil {
			t.Errorf("ValidateName(%q) accepted it", name)
		}
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "leases")
	for _, name := range []string{"../escape", "a/b", "", "Upper"} {
		if _, err := file.New(dir, name); err == nil {
			t.Errorf("New(%q) accepted it", name)
		} else if !strings.Contains(err.Error(), "lease name") {
			t.Errorf("New(%q): %v does not say the lease name is the problem", name, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New with a bad name touched the folder: %v", err)
	}
}

func TestNewCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "leases")
	s, err := file.New(dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("New created %s with mode %v, want a folder with mode 0700", dir, fi.Mode())
	}
	if want := filepath.Join(dir, "db.json"); s.Path() != want || s.String() != "file "+want {
		t.Errorf("Path %q, String %q; want %q", s.Path(), s.String(), want)
	}
	if _, err := s.Get(context.Background()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get in a new folder: %v, want store.ErrNotFound", err)
	}
}

func TestNewFolderErrors(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, want string
	}{
		{"", "folder is required"},
		{filepath.Join(base, "missing", "leases"), "does not exist"},
		{notDir, "is not a folder"},
		{filepath.Join(notDir, "leases"), "not a directory"},
	} {
		_, err := file.New(c.dir, "db")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q): %v, want an error saying %q", c.dir, err, c.want)
		}
	}
	if _, err := file.NewWithOptions(base, "db", file.Options{PollInterval: -time.Second}); err == nil {
		t.Errorf("a negative PollInterval was accepted")
	}
	if _, err := os.Stat(filepath.Join(base, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New created the missing parent: %v", err)
	}
}

// A folder this process may not write in is reported as a permission error.
// As root, which ignores permission bits, the check runs in a helper process
// of an unprivileged user.
func TestNewUnwritableFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		readOnly := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(readOnly, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(readOnly, 0o755) })
		for _, dir := range []string{readOnly, filepath.Join(readOnly, "leases")} {
			_, err := file.New(dir, "db")
			if !errors.Is(err, store.ErrPermission) {
				t.Errorf("New(%q): %v, want an error wrapping store.ErrPermission", dir, err)
			} else {
				t.Logf("New(%q): %v", dir, err)
			}
		}
		return
	}
	// Root ignores permission bits: copy the test binary where an
	// unprivileged user may run it, next to a folder that user may read but
	// not write.
	base, err := os.MkdirTemp("", "incumbent-file-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "file.test")
	copyFile(t, exe, bin)
	readOnly := filepath.Join(base, "ro")
	if err := os.Mkdir(readOnly, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{readOnly, filepath.Join(readOnly, "leases")} {
		cmd := exec.Command(bin)
		cmd.Env = []string{helperEnv + "=new", "HELPER_DIR=" + dir, "HELPER_NAME=db"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("New(%q) as uid 65534: %v\n%s", dir, err, out)
		} else {
			t.Logf("New(%q) as uid 65534: %s", dir, strings.TrimSpace(string(out)))
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecordFormat(t *testing.T) {
	dir := t.TempDir()
	s, err := file.New(dir, "db")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456000, time.UTC)
	rec, err := s.Create(ctx, store.Record{Holder: "a", Instance: "i", LeaseDuration: 15 * time.Second, AcquireTime: at, RenewTime: at, Transitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	rec.HandoffTo = "b"
	rec.Term = 9
	if rec, err = s.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("the record is not JSON: %v\n%s", err, data)
	}
	inc, _ := got["incarnation"].(string)
	want := map[string]any{
		"format": 2.0, "generation": 2.0, "incarnation": inc, "revision": 2.0, "holder": "a", "instance": "i",
		"leaseDuration": "15s", "acquireTime": "2026-05-01T10:00:00.123456Z", "renewTime": "2026-05-01T10:00:00.123456Z",
		"transitions": 3.0, "term": 9.0, "handoffTo": "b",
	}
	if len(got) != len(want) {
		t.Errorf("the record has fields %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("field %q is %v, want %v", k, got[k], v)
		}
	}
	if rec.Version != "2."+inc || len(inc) != 16 {
		t.Errorf("version %q, want 2.<16 hex digits> with the incarnation %q", rec.Version, inc)
	}
	if rec.Revision != 2 {
		t.Errorf("revision %d, want 2", rec.Revision)
	}
	if seq, err := os.ReadFile(filepath.Join(dir, "db.lock")); err != nil || string(seq) != "2\n" {
		t.Errorf("the lock file holds %q (%v), want the revision sequence %q", seq, err, "2\n")
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the record has mode %v, want 0600", fi.Mode())
	}
}

// A record that cannot be read exactly is reported, naming the file, and
// never overwritten.
func TestMalformedRecord(t *testing.T) {
	valid := `{"format": 2, "generation": 3, "incarnation": "0123456789abcdef", "revision": 5, "holder": "a", "leaseDuration": "15s", "transitions": 2, "term": 4}`
	for _, c := range []struct{ name, content string }{
		{"empty", ""},
		{"garbage", "not json"},
		{"truncated", valid[:40]},
		{"empty-object", "{}"},
		{"future-format", strings.Replace(valid, `"format": 2`, `"format": 3`, 1)},
		{"format-1", strings.Replace(strings.Replace(valid, `"format": 2`, `"format": 1`, 1), `"revision": 5, `, "", 1)},
		{"unknown-field", strings.Replace(valid, `"holder"`, `"holdr"`, 1)},
		{"trailing-data", valid + "{}"},
		{"generation-zero", strings.Replace(valid, `"generation": 3`, `"generation": 0`, 1)},
		{"bad-incarnation", strings.Replace(valid, `0123456789abcdef`, `../../etc/passwd`, 1)},
		{"no-revision", strings.Replace(valid, `"revision": 5, `, "", 1)},
		{"revision-zero", strings.Replace(valid, `"revision": 5`, `"revision": 0`, 1)},
		{"negative-term", strings.Replace(valid, `"term": 4`, `"term": -4`, 1)},
		{"bad-duration", strings.Replace(valid, `"15s"`, `"fifteen"`, 1)},
		{"negative-duration", strings.Replace(valid, `"15s"`, `"-15s"`, 1)},
		{"held-without-duration", strings.Replace(valid, `"15s"`, `"0s"`, 1)},
		{"negative-transitions", strings.Replace(valid, `"transitions": 2`, `"transitions": -2`, 1)},
		{"bad-time", strings.Replace(valid, `"transitions"`, `"renewTime": "yesterday", "transitions"`, 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := file.New(t.TempDir(), "db")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Path(), []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, err = s.Get(ctx)
			if !errors.Is(err, store.ErrMalformed) || !strings.Contains(err.Error(), s.Path()) {
				t.Fatalf("Get: %v, want an error wrapping store.ErrMalformed that names %s", err, s.Path())
			}
			t.Logf("Get: %v", err)
			_, err = s.Create(ctx, store.Record{Holder: "b", LeaseDuration: time.Second})
			if !errors.Is(err, store.ErrMalformed) || !strings.Contains(err.Error(), "fix or remove the file") {
				t.Errorf("Create: %v, want an error wrapping store.ErrMalformed that tells the operator what to do", err)
			}
			_, err = s.Update(ctx, store.Record{Holder: "b", LeaseDuration: time.Second, Version: "3.0123456789abcdef"})
			if !errors.Is(err, store.ErrMalformed) || !strings.Contains(err.Error(), "fix or remove the file") {
				t.Errorf("Update: %v, want an error wrapping store.ErrMalformed that tells the operator what to do", err)
			}
			if _, err := s.Watch(ctx, ""); !errors.Is(err, store.ErrMalformed) {
				t.Errorf("Watch: %v, want an error wrapping store.ErrMalformed", err)
			}
			data, err := os.ReadFile(s.Path())
			if err != nil || !bytes.Equal(data, []byte(c.content)) {
				t.Errorf("the malformed record was changed to %q (%v)", data, err)
			}
		})
	}
}

// A watch that finds the record corrupt reports it and ends.
func TestWatchReportsMalformed(t *testing.T) {
	for _, opts := range []file.Options{{}, {Poll: true, PollInterval: 10 * time.Millisecond}} {
		s, err := file.NewWithOptions(t.TempDir(), "db", opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec, err := s.Create(ctx, store.Record{Holder: "a", LeaseDuration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		events, err := s.Watch(ctx, rec.Version)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path(), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-events:
			if !errors.Is(ev.Err, store.ErrMalformed) {
				t.Fatalf("poll %v: the watch reported %+v, want an error wrapping store.ErrMalformed", opts.Poll, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("poll %v: the watch reported nothing within 10s", opts.Poll)
		}
		select {
		case _, open := <-events:
			if open {
				t.Fatalf("poll %v: the watch went on after its error", opts.Poll)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("poll %v: the watch was not closed after its error", opts.Poll)
		}
	}
}

func TestWatchRejectsForeignVersion(t *testing.T) {
	s, err := file.New(t.TempDir(), "db")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"12", "x.0123456789abcdef", "0.0123456789abcdef", "1.xyz"} {
		if _, err := s.Watch(context.Background(), v); err == nil {
			t.Errorf("Watch from %q was accepted", v)
		}
	}
}

// Writes wait for the lock until their context ends.
func TestWriteRespectsContext(t *testing.T) {
	s, err := file.New(t.TempDir(), "db")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Create(ctx, store.Record{Holder: "a", LeaseDuration: time.Second}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with an ended context: %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a Create with an ended context wrote the record: Get returned %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("XDG_STATE_HOME", state)
	dir, err := file.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(state, "incumbent"); dir != want {
		t.Errorf("with XDG_STATE_HOME=%s: %q, want %q", state, dir, want)
	}
	if _, err := file.New(dir, "db"); err != nil {
		t.Errorf("New(DefaultDir()): %v", err)
	}

	home := t.TempDir()
	t.Setenv("XDG_STATE_HOME", "relative/is/ignored")
	t.Setenv("HOME", home)
	dir, err = file.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".local", "state", "incumbent"); dir != want {
		t.Errorf("with HOME=%s: %q, want %q", home, dir, want)
	}
	if _, err := file.New(dir, "db"); err != nil {
		t.Errorf("New(DefaultDir()): %v", err)
	}

	cache := t.TempDir()
	t.Setenv("HOME", "")
	t.Setenv("XDG_CACHE_HOME", cache)
	dir, err = file.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "incumbent"); dir != want {
		t.Errorf("with no HOME and XDG_CACHE_HOME=%s: %q, want %q", cache, dir, want)
	}
}
