package dist

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// Annotations that name an image in an OCI layout's index.json, as
// `docker save` writes them: containerd (`ctr images import`, and docker
// on the containerd image store) reads the full name, other tools the tag.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// Formats of an image tarball.
const (
	// FormatOCI is an OCI image layout (oci-layout, index.json, blobs/)
	// holding the whole index: every platform. It loads with
	// `ctr -n k8s.io images import --all-platforms FILE` and with
	// `docker load -i FILE` on Docker's containerd image store.
	FormatOCI = "oci"
	// FormatDocker is a docker-archive (manifest.json) of one platform's
	// image, which every `docker load` accepts, and ctr too.
	FormatDocker = "docker"
)

// WriteOCI writes idx as an OCI image layout tarball at path, its
// index.json naming it ref (a tag). Every entry is stamped with t.
func WriteOCI(path string, idx v1.ImageIndex, ref name.Tag, t time.Time) error {
	dir, err := os.MkdirTemp("", "incumbent-image-")
	if err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		AnnotationImageName: ref.Name(), AnnotationRefName: ref.TagStr()})); err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	// The layout's files, folders before their content, in name order.
	var entries []entry
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			entries = append(entries, entry{name: rel + "/", mode: 0o755})
		} else {
			entries = append(entries, entry{name: rel, mode: 0o644, path: p})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	slices.SortFunc(entries, func(a, b entry) int { return compareNames(a.name, b.name) })
	if err := writeFileAtomic(path, func(w io.Writer) error { return writeTar(w, t, entries) }); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// compareNames orders by path, a folder right before what it holds.
func compareNames(a, b string) int {
	return slices.Compare(strings.Split(strings.TrimSuffix(a, "/"), "/"), strings.Split(strings.TrimSuffix(b, "/"), "/"))
}

// WriteDocker writes img as a docker-archive tarball at path, tagged ref.
func WriteDocker(path string, img v1.Image, ref name.Tag) error {
	err := writeFileAtomic(path, func(w io.Writer) error { return tarball.Write(ref, img, w) })
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// PlatformImage returns the image of one platform from idx.
func PlatformImage(idx v1.ImageIndex, p Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Arch {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("the image index has no %s image", p)
}

// Tag is the image reference of a stamp: buildinfo.Image(s.Version).
func Tag(s Stamp) (name.Tag, error) {
	ref, err := name.NewTag(buildinfo.Image(s.Version), name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference for version %q: %w", s.Version, err)
	}
	return ref, nil
}

// Push uploads idx to ref, with the credentials of the Docker config
// (`docker login ghcr.io`, or DOCKER_CONFIG), and returns the digest the
// registry stored.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, opts ...remote.Option) (v1.Hash, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push: %w", err)
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts...)
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", r, err)
	}
	got, err := remote.Head(r, opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: read it back: %w", r, err)
	}
	return got.Digest, nil
}
