package dist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// Builder cross-compiles the incumbent binary, at most once per platform.
type Builder struct {
	// ModuleDir is the module root (see ModuleRoot).
	ModuleDir string
	// OutDir receives the binaries, one folder per platform.
	OutDir string
	// Stamp is linked into every binary.
	Stamp Stamp
	// Log, when not nil, receives one line per build.
	Log io.Writer

	mu       sync.Mutex
	built    map[Platform]string
	archives map[archiveKey][]byte
}

type archiveKey struct {
	p    Platform
	name string
}

// Package is the main package of the binary.
const Package = "./cmd/incumbent"

// Binary returns the path of the binary for p, building it on first use.
func (b *Builder) Binary(ctx context.Context, p Platform) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if path, ok := b.built[p]; ok {
		return path, nil
	}
	if err := b.Stamp.Validate(); err != nil {
		return "", fmt.Errorf("build %s: %w", p, err)
	}
	out := filepath.Join(b.OutDir, p.OS+"_"+p.Arch, "incumbent")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", BuildArgs(b.Stamp, out)...)
	cmd.Dir = b.ModuleDir
	cmd.Env = BuildEnv(os.Environ(), p)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build for %s: %w\n%s", p, err, strings.TrimSpace(output.String()))
	}
	if b.Log != nil {
		fmt.Fprintf(b.Log, "built %s %s in %s\n", p, b.Stamp.Version, time.Since(start).Round(100*time.Millisecond))
	}
	if b.built == nil {
		b.built = map[Platform]string{}
	}
	b.built[p] = out
	return out, nil
}

// BinaryArchive returns a gzip-compressed tar that holds p's binary as
// name (mode 0755, owned by root, stamped with the Stamp's time), building
// and compressing it at most once: the image's binary layer and the
// release archive are this, byte for byte.
func (b *Builder) BinaryArchive(ctx context.Context, p Platform, name string) ([]byte, error) {
	bin, err := b.Binary(ctx, p)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	key := archiveKey{p, name}
	if gz, ok := b.archives[key]; ok {
		return gz, nil
	}
	gz, err := tarGz(b.Stamp.Time, []entry{{name: name, mode: 0o755, path: bin}})
	if err != nil {
		return nil, fmt.Errorf("archive the %s binary: %w", p, err)
	}
	if b.archives == nil {
		b.archives = map[archiveKey][]byte{}
	}
	b.archives[key] = gz
	return gz, nil
}

// BuildArgs are the go command's arguments for a reproducible, stripped,
// static build of Package into out, with buildinfo.ReleaseTags.
func BuildArgs(s Stamp, out string) []string {
	ldflags := fmt.Sprintf("-s -w -buildid= -X main.version=%s -X main.revision=%s", s.Version, s.Revision)
	return []string{"build", "-trimpath", "-buildvcs=false", "-tags=" + buildinfo.ReleaseTags, "-ldflags=" + ldflags, "-o", out, Package}
}

// BuildEnv is environ with what decides the output pinned: the platform,
// no cgo, no GOFLAGS from the caller, the default instruction-set levels,
// and the local toolchain (never a download).
func BuildEnv(environ []string, p Platform) []string {
	// os/exec keeps the last of duplicate variables.
	return append(environ, "GOOS="+p.OS, "GOARCH="+p.Arch, "CGO_ENABLED=0", "GOFLAGS=",
		"GOAMD64=v1", "GOARM64=v8.0", "GOTOOLCHAIN=local", "GOEXPERIMENT=")
}
