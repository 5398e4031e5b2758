package dist

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/incumbent-io/incumbent/deploy/examples"
	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// TestRelease builds a release for one platform (the binary is the one the
// image tests built) and checks its files, their checksums, the binary's
// version and the manifests' image.
func TestRelease(t *testing.T) {
	p := Platform{"linux", "amd64"}
	out := filepath.Join(t.TempDir(), "dist")
	files, err := Release(context.Background(), testBuilder, out, []Platform{p})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"incumbent_v0.0.0-test_linux_amd64.tar.gz", "incumbent_v0.0.0-test_image.tar"}
	examplesFiles, err := examples.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name := range examplesFiles {
		want = append(want, "manifests/"+name)
	}
	want = append(want, "SHA256SUMS")
	if !sameSet(files, want) {
		t.Errorf("release files %q, want %q", files, want)
	}
	var onDisk []string
	err = filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, path)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil || !sameSet(onDisk, want) {
		t.Errorf("the folder holds %q (%v), want %q", onDisk, err, want)
	}

	// SHA256SUMS: every other file, right.
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSuffix(string(sums), "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s does not match", name)
		}
		listed = append(listed, name)
	}
	if !slices.IsSorted(listed) || !sameSet(listed, want[:len(want)-1]) {
		t.Errorf("SHA256SUMS lists %q", listed)
	}

	// The archive: the binary alone, executable, stamped.
	gz, err := os.ReadFile(filepath.Join(out, "incumbent_v0.0.0-test_linux_amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	archived := readTar(t, zr)
	bin, ok := archived["incumbent"]
	if len(archived) != 1 || !ok || bin.Mode != 0o755 || !bin.ModTime.Equal(testStamp.Time) {
		t.Fatalf("the archive holds %d files; incumbent: %v", len(archived), bin.Header)
	}
	if p.String() == runtime.GOOS+"/"+runtime.GOARCH {
		path := filepath.Join(t.TempDir(), "incumbent")
		if err := os.WriteFile(path, bin.data, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(path, "version").Output(); err != nil || !strings.HasPrefix(string(out), "incumbent v0.0.0-test (commit 0123456789ab, ") {
			t.Errorf("the released binary's version: %q (%v)", out, err)
		}
	}

	// The image tarball holds this platform only.
	dir := untar(t, filepath.Join(out, "incumbent_v0.0.0-test_image.tar"))
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform.Architecture != "amd64" {
		t.Errorf("the release image has %d platforms, want linux/amd64 alone", len(im.Manifests))
	}

	// The manifests run this version's image, and no other.
	for name := range examplesFiles {
		b, err := os.ReadFile(filepath.Join(out, "manifests", name))
		if err != nil {
			t.Fatal(err)
		}
		refs := imageRef.FindAllSubmatch(b, -1)
		for _, m := range refs {
			if string(m[1]) != "v0.0.0-test" {
				t.Errorf("manifests/%s names %s", name, m[0])
			}
		}
		if len(refs) == 0 {
			t.Errorf("manifests/%s names no incumbent image", name)
		}
	}

	// A second release into the same folder is refused.
	if _, err := Release(context.Background(), testBuilder, out, []Platform{p}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a release into a full folder: %v, want refused", err)
	}
}

var imageRef = regexp.MustCompile(regexp.QuoteMeta(buildinfo.ImageRepository) + `:(\S+)`)

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
