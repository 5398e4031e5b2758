package dist

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// TestOCITarball writes the image tarball, reads it back as an OCI layout
// and checks what ctr and docker will see: the name, the platforms, each
// image's config and files, and the binary's own version.
func TestOCITarball(t *testing.T) {
	path := filepath.Join(t.TempDir(), "incumbent.tar")
	ref := mustTag(t)
	if err := WriteOCI(path, testIndex(t), ref, testStamp.Time); err != nil {
		t.Fatal(err)
	}
	dir := untar(t, path)
	for _, f := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the tarball is no OCI layout: %v", err)
		}
	}
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 {
		t.Fatalf("index.json lists %d entries, want the one image index", len(tm.Manifests))
	}
	d := tm.Manifests[0]
	if d.MediaType != types.OCIImageIndex {
		t.Errorf("index.json entry is a %s, want an image index", d.MediaType)
	}
	if got := d.Annotations[AnnotationImageName]; got != "ghcr.io/incumbent-io/incumbent:v0.0.0-test" {
		t.Errorf("index.json names the image %q (ctr and docker load use this name)", got)
	}
	if got := d.Annotations[AnnotationRefName]; got != "v0.0.0-test" {
		t.Errorf("index.json ref.name %q, want the tag", got)
	}
	idx, err := top.ImageIndex(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("the image index read back is not valid: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	checkLabels(t, "index annotations", im.Annotations)
	var platforms []string
	for _, m := range im.Manifests {
		if m.Platform == nil {
			t.Fatalf("index entry %s has no platform", m.Digest)
		}
		p := Platform{m.Platform.OS, m.Platform.Architecture}
		platforms = append(platforms, p.String())
		if m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != "" {
			t.Errorf("%s: media type %s, artifact type %q: want a plain OCI image", p, m.MediaType, m.ArtifactType)
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, p, img, true)
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %v, want %v", platforms, want)
	}
}

func checkLabels(t *testing.T, what string, got map[string]string) {
	t.Helper()
	want := map[string]string{
		"org.opencontainers.image.title":    "incumbent",
		"org.opencontainers.image.source":   "https://github.com/incumbent-io/incumbent",
		"org.opencontainers.image.version":  "v0.0.0-test",
		"org.opencontainers.image.revision": testStamp.Revision,
		"org.opencontainers.image.created":  "2026-01-02T03:04:05Z",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
		}
	}
	if got["org.opencontainers.image.description"] == "" {
		t.Errorf("%s: no description", what)
	}
}

// checkImage checks one platform's config and files (and its manifest's
// annotations if asked), and runs the binary when the platform is this
// machine's.
func checkImage(t *testing.T, p Platform, img v1.Image, annotated bool) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != p.OS || cf.Architecture != p.Arch {
		t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
	}
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/incumbent"}) || len(c.Cmd) != 0 || c.WorkingDir != "/" {
		t.Errorf("%s: user %q, entrypoint %q, cmd %q, workdir %q", p, c.User, c.Entrypoint, c.Cmd, c.WorkingDir)
	}
	if !cf.Created.Equal(testStamp.Time) {
		t.Errorf("%s: created %s, want the stamp's time", p, cf.Created)
	}
	checkLabels(t, p.String()+" labels", c.Labels)
	if annotated {
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		checkLabels(t, p.String()+" manifest annotations", m.Annotations)
	}

	files := extract(t, img)
	want := map[string]struct {
		mode     int64
		uid, gid int
	}{
		"incumbent":                         {0o755, 0, 0},
		"etc/passwd":                        {0o644, 0, 0},
		"etc/group":                         {0o644, 0, 0},
		"etc/nsswitch.conf":                 {0o644, 0, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
		"home/nonroot/":                     {0o700, 65532, 65532},
		"tmp/":                              {0o1777, 0, 0},
	}
	for name, w := range want {
		f, ok := files[name]
		if !ok {
			t.Errorf("%s: no %s in the image", p, name)
			continue
		}
		if f.Mode != w.mode || f.Uid != w.uid || f.Gid != w.gid {
			t.Errorf("%s: %s has mode %o owner %d:%d, want %o %d:%d", p, name, f.Mode, f.Uid, f.Gid, w.mode, w.uid, w.gid)
		}
	}
	for name, f := range files {
		if !f.ModTime.Equal(testStamp.Time) || f.Uname != "" || f.Gname != "" {
			t.Errorf("%s: %s has time %s, owner names %q:%q: want the stamp's time, numeric owners", p, name, f.ModTime, f.Uname, f.Gname)
		}
	}
	if s := string(files["etc/passwd"].data); !strings.Contains(s, "\nnonroot:x:65532:65532:nonroot:/home/nonroot:") {
		t.Errorf("%s: /etc/passwd has no nonroot user 65532:\n%s", p, s)
	}
	if s := string(files["etc/group"].data); !strings.Contains(s, "\nnonroot:x:65532:") {
		t.Errorf("%s: /etc/group has no nonroot group 65532:\n%s", p, s)
	}
	if n := countCerts(t, files["etc/ssl/certs/ca-certificates.crt"].data); n < 100 {
		t.Errorf("%s: %d CA certificates", p, n)
	}

	if p.OS != runtime.GOOS || p.Arch != runtime.GOARCH {
		return
	}
	bin := filepath.Join(t.TempDir(), "incumbent")
	if err := os.WriteFile(bin, files["incumbent"].data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if want := "incumbent v0.0.0-test (commit 0123456789ab, " + runtime.Version() + ", " + p.String() + ")\n"; err != nil || string(out) != want {
		t.Errorf("the image's binary: version printed %q (%v), want %q", out, err, want)
	} else {
		t.Logf("%s: the image's binary prints %s", p, bytes.TrimSpace(out))
	}
	out, err = exec.Command(bin, "version", "-o", "json").Output()
	var got buildinfo.Info
	if err == nil {
		err = json.Unmarshal(out, &got)
	}
	if err != nil || got.Version != testStamp.Version || got.Revision != testStamp.Revision ||
		got.Image != "ghcr.io/incumbent-io/incumbent:v0.0.0-test" || got.Platform != p.String() {
		t.Errorf("the image's binary: version -o json printed %s (%v)", out, err)
	}
}

type file struct {
	*tar.Header
	data []byte
}

// extract reads the image's flattened file system.
func extract(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	return readTar(t, rc)
}

func readTar(t *testing.T, r io.Reader) map[string]file {
	t.Helper()
	files := map[string]file{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := h.Name
		if h.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/") + "/" // mutate.Extract drops the slash
		}
		files[name] = file{h, data}
	}
}

func countCerts(t *testing.T, pemBytes []byte) int {
	t.Helper()
	n := 0
	for rest := pemBytes; ; n++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			if len(bytes.TrimSpace(rest)) > 0 {
				t.Errorf("trailing bytes after %d certificates", n)
			}
			return n
		}
		if _, err := x509.ParseCertificate(b.Bytes); b.Type != "CERTIFICATE" || err != nil {
			t.Errorf("PEM block %d: %s, %v", n, b.Type, err)
		}
	}
}

func untar(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	for name, fl := range readTar(t, f) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		err := os.MkdirAll(filepath.Dir(p), 0o755)
		if err == nil && fl.Typeflag != tar.TypeDir {
			err = os.WriteFile(p, fl.data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustTag(t *testing.T) name.Tag {
	t.Helper()
	ref, err := Tag(testStamp)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestImageIsReproducible builds the binaries and the image a second time
// in another folder: the digest and the tarball's bytes must not change.
func TestImageIsReproducible(t *testing.T) {
	first := testIndex(t)
	again := &Builder{ModuleDir: testBuilder.ModuleDir, OutDir: t.TempDir(), Stamp: testStamp}
	second, err := BuildIndex(context.Background(), again, ImagePlatforms)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := first.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := second.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Errorf("two builds of one commit: digests %s and %s", d1, d2)
	}
	ref := mustTag(t)
	var sums [2][32]byte
	for i, idx := range []v1.ImageIndex{first, second} {
		path := filepath.Join(t.TempDir(), "incumbent.tar")
		if err := WriteOCI(path, idx, ref, testStamp.Time); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sums[i] = sha256.Sum256(b)
	}
	if sums[0] != sums[1] {
		t.Error("two builds of one commit wrote different tarballs")
	}
	// Any other time is another image.
	later := testStamp
	later.Time = later.Time.Add(time.Second)
	l, err := baseLayer(later.Time)
	if err != nil {
		t.Fatal(err)
	}
	b, err := baseLayer(testStamp.Time)
	if err != nil {
		t.Fatal(err)
	}
	if dl, db := mustDigest(t, l), mustDigest(t, b); dl == db {
		t.Error("the layer does not depend on the stamp's time")
	}
}

func mustDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDockerArchive writes one platform as a docker-archive, which any
// docker load accepts, and reads it back.
func TestDockerArchive(t *testing.T) {
	p := Platform{"linux", "amd64"}
	img, err := PlatformImage(testIndex(t), p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "incumbent.tar")
	ref := mustTag(t)
	if err := WriteDocker(path, img, ref); err != nil {
		t.Fatal(err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(path) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"ghcr.io/incumbent-io/incumbent:v0.0.0-test"}) {
		t.Fatalf("manifest.json: %+v", m)
	}
	back, err := tarball.ImageFromPath(path, &ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(back); err != nil {
		t.Errorf("the docker-archive's image is not valid: %v", err)
	}
	checkImage(t, p, back, false) // a docker-archive keeps no manifest annotations
}

// TestCACertificates: every root without a constraint, each a parseable
// certificate.
func TestCACertificates(t *testing.T) {
	b, err := CACertificates()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for r := range bundle.Roots() {
		if r.Constraint == nil {
			want++
		}
	}
	if got := countCerts(t, b); got != want || got < 100 {
		t.Errorf("%d certificates, want the bundle's %d unconstrained roots", got, want)
	}
}
