package dist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/incumbent-io/incumbent/deploy/examples"
	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// ChecksumsFile lists the SHA-256 of every other file of a release, in the
// format `sha256sum -c` reads.
const ChecksumsFile = "SHA256SUMS"

// ArchiveName is the name of a platform's binary archive in a release:
// incumbent_VERSION_OS_ARCH.tar.gz, holding the binary `incumbent`.
func ArchiveName(s Stamp, p Platform) string {
	return fmt.Sprintf("incumbent_%s_%s_%s.tar.gz", s.Version, p.OS, p.Arch)
}

// ImageTarballName is the name of the image's OCI tarball in a release.
func ImageTarballName(s Stamp) string { return fmt.Sprintf("incumbent_%s_image.tar", s.Version) }

// Release writes a release of b.Stamp's version into out, which must not
// exist or be empty:
//
//	incumbent_VERSION_OS_ARCH.tar.gz   one per platform
//	incumbent_VERSION_image.tar        the image (OCI layout) of the linux platforms
//	manifests/*.yaml                   the example manifests, on this version's image
//	SHA256SUMS                         the checksums of all of the above
//
// It returns the names of the files written, SHA256SUMS last.
func Release(ctx context.Context, b *Builder, out string, platforms []Platform) ([]string, error) {
	if err := emptyDir(out); err != nil {
		return nil, err
	}
	var files []string
	var linux []Platform
	for _, p := range platforms {
		gz, err := b.BinaryArchive(ctx, p, "incumbent")
		if err != nil {
			return nil, err
		}
		name := ArchiveName(b.Stamp, p)
		if err := os.WriteFile(filepath.Join(out, name), gz, 0o644); err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		files = append(files, name)
		if p.OS == "linux" {
			linux = append(linux, p)
		}
	}
	if len(linux) > 0 {
		idx, err := BuildIndex(ctx, b, linux)
		if err != nil {
			return nil, err
		}
		ref, err := Tag(b.Stamp)
		if err != nil {
			return nil, err
		}
		name := ImageTarballName(b.Stamp)
		if err := WriteOCI(filepath.Join(out, name), idx, ref, b.Stamp.Time); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	manifests, err := Manifests(b.Stamp)
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(out, "manifests"), 0o755); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(manifests)) {
		rel := "manifests/" + name
		if err := os.WriteFile(filepath.Join(out, rel), manifests[name], 0o644); err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		files = append(files, rel)
	}
	sums, err := Checksums(out, files)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, ChecksumsFile), sums, 0o644); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return append(files, ChecksumsFile), nil
}

// Manifests renders the example manifests (deploy/examples) on the image of
// s's version instead of :latest, as incumbent inject of that version
// writes them.
func Manifests(s Stamp) (map[string][]byte, error) {
	files, err := examples.Render(buildinfo.Image(s.Version))
	if err != nil {
		return nil, fmt.Errorf("example manifests: %w", err)
	}
	return files, nil
}

// Checksums returns the SHA256SUMS lines of files (relative to dir), in
// name order.
func Checksums(dir string, files []string) ([]byte, error) {
	var b bytes.Buffer
	for _, name := range slices.Sorted(slices.Values(files)) {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("checksum: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("checksum %s: %w", name, err)
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), name)
	}
	return b.Bytes(), nil
}

// emptyDir creates dir, or checks that it is empty, so that a release never
// mixes the files of two versions.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("release: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("release: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("release: %s is not empty", dir)
	}
	return nil
}
