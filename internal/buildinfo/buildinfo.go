// Package buildinfo says which build of incumbent is running (its version
// and commit, stamped at link time by hack/image and hack/release) and names
// the container image that carries it. It is deliberately tiny and imports
// nothing but the standard library, so that the binary, the example
// manifests and the sidecar injector can share one image name.
//
// The image scheme is ImageRepository:VERSION, where VERSION is what
// `git describe --tags --always --dirty` printed when the image was built
// (v0.1.0 on a tag), and the binary is at ImageBinary inside it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

const (
	// ImageRepository is where the incumbent image is published; a tag is
	// the version (see Image).
	ImageRepository = "ghcr.io/incumbent-io/incumbent"
	// ImageBinary is the path of the incumbent binary inside the image, its
	// entrypoint; an application image copies it from there:
	//	COPY --from=ghcr.io/incumbent-io/incumbent:v0.1.0 /incumbent /usr/local/bin/incumbent
	ImageBinary = "/incumbent"
	// ImageUser is the numeric user and group the image runs as
	// ("nonroot", as in distroless images).
	ImageUser = "65532:65532"
	// Source is the project's source repository.
	Source = "https://github.com/incumbent-io/incumbent"
	// Devel is the version of a build that was not stamped and has no
	// module version (a plain `go build` in a work tree).
	Devel = "devel"
	// LatestTag is the tag Image uses for a build whose version cannot
	// be an image tag, such as Devel.
	LatestTag = "latest"
	// ReleaseTags are the build tags of the released binaries and the
	// image (hack/internal/dist), and of the binary bench measures.
	// grpcnotrace leaves golang.org/x/net/trace out of the etcd client's
	// gRPC (tracing that incumbent never turns on): it executes
	// html/template, and a binary that can execute a template keeps every
	// exported method of every type, about 4.8 MB of the binary and 3 MiB
	// of the idle sidecar's resident memory (docs/sidecar.md, "Measured").
	ReleaseTags = "grpcnotrace"
)

// ValidTag reports whether version can be used as an image tag: one to 128
// characters of [A-Za-z0-9_.-], the first not '.' or '-'. (A loop, not a
// regular expression: that one, compiled at start-up, held 118 kB.)
func ValidTag(version string) bool {
	if len(version) == 0 || len(version) > 128 || version[0] == '.' || version[0] == '-' {
		return false
	}
	for i := 0; i < len(version); i++ {
		switch c := version[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// Image returns the image reference for a version:
// ghcr.io/incumbent-io/incumbent:VERSION, or :latest when version is Devel,
// empty, or not a valid tag (a Go pseudo-version with +dirty).
func Image(version string) string {
	if version == Devel || !ValidTag(version) {
		return ImageRepository + ":" + LatestTag
	}
	return ImageRepository + ":" + version
}

// Info describes one build.
type Info struct {
	// Version is the stamped version, else the module version (go install
	// of a tagged module), else Devel.
	Version string `json:"version"`
	// Revision is the commit the build was made from, when known.
	Revision string `json:"revision,omitempty"`
	// Modified is true when the Go toolchain recorded uncommitted changes
	// (only for unstamped builds; a stamped version says -dirty instead).
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary, e.g. go1.26.8.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH of the binary.
	Platform string `json:"platform"`
	// Image is the image reference this version is published as.
	Image string `json:"image"`
}

// Read returns the running binary's Info, given the version and revision
// stamped at link time (either may be empty).
func Read(version, revision string) Info {
	in := Info{Version: version, Revision: revision, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		if in.Revision == "" {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					in.Revision = s.Value
				case "vcs.modified":
					in.Modified = s.Value == "true"
				}
			}
		}
	}
	if in.Version == "" {
		in.Version = Devel
	}
	in.Image = Image(in.Version)
	return in
}
