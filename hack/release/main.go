// Command release builds a release of incumbent into one folder:
//
//	go run ./hack/release --out dist
//
// writes, for the version `git describe --tags --always --dirty` gives
// (the tag, on a tagged commit) unless --version is given:
//
//	dist/incumbent_VERSION_{linux,darwin}_{amd64,arm64}.tar.gz   the binary
//	dist/incumbent_VERSION_image.tar                               the image, OCI layout (linux/amd64, linux/arm64)
//	dist/manifests/*.yaml                                          the example manifests on that image
//	dist/SHA256SUMS                                                sha256sum -c SHA256SUMS
//
// The folder must not exist or be empty. Publishing the image is
// `go run ./hack/image --push ghcr.io/incumbent-io/incumbent:VERSION`,
// which gives the digest of the tarball (the builds are reproducible).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/incumbent-io/incumbent/hack/internal/dist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	out := fs.String("out", "dist", "the release `folder` (must not exist or be empty)")
	platforms := fs.String("platforms", dist.FormatPlatforms(dist.ReleasePlatforms), "comma-separated `platforms` of the binaries; the image has the linux ones")
	version := fs.String("version", "", "version to stamp (default: git describe --tags --always --dirty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	ps, err := dist.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	root, err := dist.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	stamp, err := dist.GitStamp(ctx, root, *version)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "incumbent-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &dist.Builder{ModuleDir: root, OutDir: tmp, Stamp: stamp, Log: os.Stderr}
	files, err := dist.Release(ctx, b, *out, ps)
	if err != nil {
		return err
	}
	fmt.Printf("release %s (commit %s) in %s:\n", stamp.Version, stamp.Revision, *out)
	for _, f := range files {
		fmt.Println("  " + f)
	}
	return nil
}
