package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInjectAsAPostRenderer runs the binary as Helm and kustomize run it: a
// rendered chart on standard input, the injected stream on standard
// output, exit 0; a chart it refuses, exit 2 and the reason on standard
// error (what Helm shows).
func TestInjectAsAPostRenderer(t *testing.T) {
	chart, err := os.ReadFile(filepath.Join(moduleRoot(), "deploy", "examples", "helm", "testdata", "rendered.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) ([]byte, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.Bytes(), errb.String(), 0
		case errors.As(err, &ee):
			return out.Bytes(), errb.String(), ee.ExitCode()
		}
		t.Fatal(err)
		return nil, "", -1
	}
	out, errb, code := run(chart, "inject", "--lease=web", "--mode=labels", "--rbac=keep")
	if code != 0 || !bytes.Contains(out, []byte("- name: incumbent\n")) || !bytes.Contains(out, []byte("helm.sh/resource-policy: keep")) {
		t.Fatalf("exit %d, stderr %q:\n%s", code, errb, out)
	}
	again, _, code := run(out, "inject", "--lease=web", "--mode=labels", "--rbac=keep")
	if code != 0 || !bytes.Equal(again, out) {
		t.Errorf("injecting the output again: exit %d, changed", code)
	}
	bad := bytes.Replace(chart, []byte("      serviceAccountName: web\n"), []byte("      serviceAccountName: web\n      hostNetwork: true\n"), 1)
	out, errb, code = run(bad, "inject", "--lease=web")
	if code != 2 || len(out) != 0 || !strings.Contains(errb, "incumbent: stdin:") || !strings.Contains(errb, "runs on the host's network") {
		t.Errorf("a refused chart: exit %d, stdout %q, stderr %q", code, out, errb)
	}
}

// TestCopyBinaryRuns: what exec mode's init container copies runs.
func TestCopyBinaryRuns(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "incumbent")
	if b, err := exec.Command(bin, "copy-binary", dst).CombinedOutput(); err != nil {
		t.Fatalf("copy-binary: %v\n%s", err, b)
	}
	b, err := exec.Command(dst, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(b), "incumbent ") {
		t.Errorf("the copy does not run: %v\n%s", err, b)
	}
}
