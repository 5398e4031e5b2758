package dist

import (
	"context"
	debugbuildinfo "debug/buildinfo"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// TestIncumbentDoesNotLinkTheImageTools: go-containerregistry and the CA
// bundle are for these tools only, never in the binary.
func TestIncumbentDoesNotLinkTheImageTools(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", Package)
	cmd.Dir = testBuilder.ModuleDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/google/go-containerregistry") || strings.HasPrefix(pkg, "golang.org/x/crypto/x509roots") ||
			strings.HasPrefix(pkg, "github.com/incumbent-io/incumbent/hack/") {
			t.Errorf("%s imports %s", Package, pkg)
		}
	}
}

// TestBinaryHasTheReleaseTags: what ships is built with
// buildinfo.ReleaseTags, as bench measures it.
func TestBinaryHasTheReleaseTags(t *testing.T) {
	bin, err := testBuilder.Binary(context.Background(), Platform{OS: runtime.GOOS, Arch: runtime.GOARCH})
	if err != nil {
		t.Fatal(err)
	}
	bi, err := debugbuildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := debug.BuildSetting{Key: "-tags", Value: buildinfo.ReleaseTags}
	if !slices.Contains(bi.Settings, want) {
		t.Errorf("the binary's build settings lack %s=%s: %v", want.Key, want.Value, bi.Settings)
	}
}
