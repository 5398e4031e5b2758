package dist

import (
	"os/exec"
	"strings"
	"testing"
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
