// Command image builds the incumbent container image without a container
// engine, and writes it as a tarball or pushes it to a registry:
//
//	go run ./hack/image --out incumbent.tar                  # OCI layout, linux/amd64 + linux/arm64
//	go run ./hack/image --out incumbent.tar --format docker  # docker-archive, this machine's linux arch
//	go run ./hack/image --push ghcr.io/incumbent-io/incumbent:v0.1.0
//
// Load an OCI tarball with `ctr -n k8s.io images import --all-platforms
// incumbent.tar` (containerd, as the kubelet uses it) or `docker load -i
// incumbent.tar` (Docker on the containerd image store); a docker-archive
// loads with any `docker load`. The image is named
// ghcr.io/incumbent-io/incumbent:VERSION, VERSION from
// `git describe --tags --always --dirty` unless --version is given.
//
// Two runs on one commit with one Go toolchain give the same digest; see
// hack/internal/dist.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/incumbent-io/incumbent/hack/internal/dist"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	out := fs.String("out", "", "write the image tarball to `FILE`")
	format := fs.String("format", dist.FormatOCI, "tarball format: oci (an image index of every --platform; ctr import, docker load on the containerd store) or docker (one --platform; any docker load)")
	platforms := fs.String("platform", "", "comma-separated `platforms` (default "+dist.FormatPlatforms(dist.ImagePlatforms)+"; with --format docker: linux/"+runtime.GOARCH+")")
	version := fs.String("version", "", "version to stamp and tag (default: git describe --tags --always --dirty)")
	var push []string
	fs.Func("push", "also push the image index to `REF`, e.g. "+"ghcr.io/incumbent-io/incumbent:v0.1.0 (credentials from docker login); may repeat", func(s string) error {
		push = append(push, s)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *out == "" && len(push) == 0 {
		return errors.New("nothing to do: give --out FILE, --push REF, or both")
	}
	if *format != dist.FormatOCI && *format != dist.FormatDocker {
		return fmt.Errorf("--format %q: want oci or docker", *format)
	}
	list := *platforms
	switch {
	case list == "" && *format == dist.FormatDocker:
		list = "linux/" + runtime.GOARCH
	case list == "":
		list = dist.FormatPlatforms(dist.ImagePlatforms)
	}
	ps, err := dist.ParsePlatforms(list)
	if err != nil {
		return err
	}
	if *format == dist.FormatDocker && *out != "" && len(ps) != 1 {
		return fmt.Errorf("--format docker holds one platform, not %d: give one --platform, or use --format oci", len(ps))
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
	idx, err := dist.BuildIndex(ctx, b, ps)
	if err != nil {
		return err
	}
	ref, err := dist.Tag(stamp)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	sizes, err := platformSizes(idx, ps)
	if err != nil {
		return err
	}
	fmt.Printf("%s %s (%s)\n", ref, digest, sizes)

	if *out != "" {
		if *format == dist.FormatDocker {
			img, err := dist.PlatformImage(idx, ps[0])
			if err != nil {
				return err
			}
			if err := dist.WriteDocker(*out, img, ref); err != nil {
				return err
			}
			fmt.Printf("wrote %s (docker-archive, %s): docker load -i %s\n", *out, ps[0], *out)
		} else {
			if err := dist.WriteOCI(*out, idx, ref, stamp.Time); err != nil {
				return err
			}
			fmt.Printf("wrote %s (OCI layout, %s): ctr -n k8s.io images import --all-platforms %s, or docker load -i %s\n",
				*out, dist.FormatPlatforms(ps), *out, *out)
		}
	}
	for _, r := range push {
		got, err := dist.Push(ctx, idx, r)
		if err != nil {
			return err
		}
		fmt.Printf("pushed %s@%s\n", r, got)
	}
	return nil
}

// platformSizes describes the compressed size of each platform's image.
func platformSizes(idx v1.ImageIndex, ps []dist.Platform) (string, error) {
	var parts []string
	for _, p := range ps {
		img, err := dist.PlatformImage(idx, p)
		if err != nil {
			return "", err
		}
		n, err := dist.CompressedSize(img)
		if err != nil {
			return "", err
		}
		parts = append(parts, fmt.Sprintf("%s %.1f MB", p, float64(n)/1e6))
	}
	return strings.Join(parts, ", "), nil
}
