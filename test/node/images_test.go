//go:build node

package node

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/incumbent-io/incumbent/test/node/kubenode"
)

// moduleRoot is the root of the source tree.
func moduleRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}

// buildImages builds, under dir: incumbent's image as the release builds it
// (hack/image), incumbent's binary for the CLI, and one image holding the
// tier's workloads (nodeapp and the chaos harness's child), tagged both as
// the app image and as the pod sandbox. It returns the image tarballs.
func buildImages(ctx context.Context, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root := moduleRoot()
	goCmd := func(env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
		return nil
	}
	incTar := filepath.Join(dir, "incumbent.tar")
	if err := goCmd(nil, "run", "./hack/image", "--version", "v0.0.0-node-test", "--platform", "linux/amd64", "--out", incTar); err != nil {
		return nil, err
	}
	incBinary = filepath.Join(dir, "incumbent")
	if err := goCmd(nil, "build", "-o", incBinary, "./cmd/incumbent"); err != nil {
		return nil, err
	}
	static := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}
	bins := map[string]string{"nodeapp": "./test/node/nodeapp", "child": "./test/chaos/child"}
	files := map[string][]byte{}
	for bin, pkg := range bins {
		out := filepath.Join(dir, bin)
		if err := goCmd(static, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		files["/"+bin] = b
	}
	layerTar, err := tarOf(files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	image := func(entrypoint ...string) (v1.Image, error) {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		cf.Config.Entrypoint = entrypoint
		cf.Config.User = "65532"
		return mutate.ConfigFile(img, cf)
	}
	app, err := image("/nodeapp")
	if err != nil {
		return nil, err
	}
	pause, err := image("/nodeapp", "pause")
	if err != nil {
		return nil, err
	}
	refs := map[name.Tag]v1.Image{}
	for ref, img := range map[string]v1.Image{appImage: app, kubenode.PauseImage: pause} {
		tag, err := name.NewTag(ref)
		if err != nil {
			return nil, err
		}
		refs[tag] = img
	}
	appTar := filepath.Join(dir, "app.tar")
	if err := tarball.MultiWriteToFile(appTar, refs); err != nil {
		return nil, err
	}
	return []string{incTar, appTar}, nil
}

// tarOf writes files (absolute paths) as an executable image layer.
func tarOf(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for path, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
