package dist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// The user the image runs as: buildinfo.ImageUser, and the owner of its home.
const (
	nonrootUID = 65532
	nonrootGID = 65532
)

// Labels are the image's OCI labels, also set as the annotations of each
// image manifest and of the index (where registries show them).
func Labels(s Stamp) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "incumbent",
		"org.opencontainers.image.description": "Leader election for any process: a Kubernetes sidecar, a supervisor and an operator CLI",
		"org.opencontainers.image.source":      buildinfo.Source,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.created":     s.Time.UTC().Format(time.RFC3339),
	}
}

// BuildIndex builds the binaries for platforms (linux only) with b and
// assembles them into an image index.
func BuildIndex(ctx context.Context, b *Builder, platforms []Platform) (v1.ImageIndex, error) {
	if len(platforms) == 0 {
		return nil, fmt.Errorf("image: no platform")
	}
	base, err := baseLayer(b.Stamp.Time)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		if p.OS != "linux" {
			return nil, fmt.Errorf("image: platform %s: the image is for linux only", p)
		}
		gz, err := b.BinaryArchive(ctx, p, buildinfo.ImageBinary[1:])
		if err != nil {
			return nil, err
		}
		bin, err := layerFromTarGz(gz)
		if err != nil {
			return nil, err
		}
		img, err := Image(b.Stamp, p, base, bin)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: plainImage{img},
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}}})
	}
	idx = mutate.Annotations(idx, Labels(b.Stamp)).(v1.ImageIndex)
	if _, err := idx.Digest(); err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	return idx, nil
}

// plainImage is an image whose index entry has no artifactType.
// go-containerregistry otherwise sets it to the config's media type, which
// marks an artifact; image indexes that engines write (docker buildx, ko)
// have none.
type plainImage struct{ v1.Image }

// ArtifactType is empty: this is an image, not an artifact.
func (plainImage) ArtifactType() (string, error) { return "", nil }

// Image assembles the image for one platform from the base layer (shared
// by every platform) and the layer with the binary at
// buildinfo.ImageBinary.
func Image(s Stamp, p Platform, base, bin v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: s.Time.UTC()}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created,
			CreatedBy: "hack/image: CA certificates, /etc/passwd, /etc/group, /etc/nsswitch.conf, /home/nonroot, /tmp"}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: created,
			CreatedBy: "hack/image: COPY incumbent " + buildinfo.ImageBinary}})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", p, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", p, err)
	}
	cf = cf.DeepCopy()
	cf.Created, cf.OS, cf.Architecture = created, p.OS, p.Arch
	cf.Config = v1.Config{
		Entrypoint: []string{buildinfo.ImageBinary},
		User:       buildinfo.ImageUser,
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Labels:     Labels(s),
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("image %s: %w", p, err)
	}
	return mutate.Annotations(img, Labels(s)).(v1.Image), nil
}

// baseLayer is everything but the binary: the same bytes on every
// platform, so registries and containerd store it once.
func baseLayer(t time.Time) (v1.Layer, error) {
	certs, err := CACertificates()
	if err != nil {
		return nil, err
	}
	const home = "/home/nonroot"
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
		"nonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", nonrootUID, nonrootGID, home)
	group := fmt.Sprintf("root:x:0:\nnobody:x:65534:\nnonroot:x:%d:\n", nonrootGID)
	return layer(t, []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs},
		{name: "home/", mode: 0o755},
		{name: home[1:] + "/", mode: 0o700, uid: nonrootUID, gid: nonrootGID},
		{name: "tmp/", mode: 0o1777},
	})
}

// layer compresses entries itself (see tarGz), so that the layer's digest
// does not depend on go-containerregistry's choice of compressor.
func layer(t time.Time, entries []entry) (v1.Layer, error) {
	gz, err := tarGz(t, entries)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return layerFromTarGz(gz)
}

func layerFromTarGz(gz []byte) (v1.Layer, error) {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}

// CompressedSize is what pulling img transfers: its manifest, config and
// compressed layers.
func CompressedSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}
