// Package dist builds what incumbent ships, without a container engine:
// static binaries, the container image (an OCI image index for linux/amd64
// and linux/arm64, assembled with go-containerregistry), its tarballs, and
// the release folder. The commands hack/image and hack/release are thin
// flag parsers over it; nothing in cmd/incumbent imports it.
//
// # Reproducibility
//
// Two builds of one commit with one Go toolchain give byte-identical
// binaries, layers, tarballs and so the same image digest:
//
//   - binaries: CGO_ENABLED=0, -trimpath, -buildvcs=false (the commit is
//     stamped with -X instead), -ldflags=-buildid=, GOFLAGS cleared, and
//     GOAMD64/GOARM64 pinned to their defaults, whatever the environment
//     (and -tags buildinfo.ReleaseTags, which only leave code out);
//   - every timestamp (file modification times, the image's created time
//     and label) is the commit time, or SOURCE_DATE_EPOCH when set;
//   - tar entries are written in a fixed order with fixed owners and modes
//     and no user or group names; gzip headers carry no name or time;
//   - the CA certificates come from a Go module pinned by go.sum
//     (golang.org/x/crypto/x509roots/fallback/bundle: Mozilla's NSS
//     roots), not from the building machine.
//
// # The image
//
//	/incumbent                          the binary, the entrypoint (buildinfo.ImageBinary)
//	/etc/ssl/certs/ca-certificates.crt  Mozilla's roots as PEM
//	/etc/passwd, /etc/group             root, nobody and nonroot (65532)
//	/etc/nsswitch.conf                  hosts: files dns (so /etc/hosts wins)
//	/home/nonroot, /tmp                 a home and a scratch folder
//
// It runs as 65532:65532 in /, and carries the OCI labels (and manifest
// and index annotations) title, description, source, version, revision
// and created. There is no base image: two layers, the first (everything
// but the binary) identical on every platform.
package dist
