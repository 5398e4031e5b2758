package dist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// entry is one file or folder of a tar archive. Archives are written in
// the order of their entries, with a fixed time and numeric owners only,
// so that equal entries give equal bytes.
type entry struct {
	name     string // relative, "/"-separated; folders end in "/"
	mode     int64  // permission bits, with 01000 for sticky
	uid, gid int
	data     []byte // a file's content
	path     string // or the file to read it from
}

// writeTar writes entries as a USTAR archive, every entry stamped with t.
func writeTar(w io.Writer, t time.Time, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := e.write(tw, t); err != nil {
			return fmt.Errorf("archive %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

func (e entry) write(tw *tar.Writer, t time.Time) error {
	h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: t.UTC().Truncate(time.Second),
		Format: tar.FormatUSTAR}
	if strings.HasSuffix(e.name, "/") {
		h.Typeflag = tar.TypeDir
		return tw.WriteHeader(h)
	}
	h.Typeflag = tar.TypeReg
	var r io.Reader = bytes.NewReader(e.data)
	h.Size = int64(len(e.data))
	if e.path != "" {
		f, err := os.Open(e.path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		r, h.Size = f, fi.Size()
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err := io.Copy(tw, r)
	return err
}

// tarGz returns entries as a gzip-compressed tar archive. The gzip
// header has no name and no time, so the bytes depend on the entries alone
// (and on the Go version's compress/flate). The default level: the best
// one saves 0.4% of the binary's 9 MB for three times the time.
func tarGz(t time.Time, entries []entry) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if err := writeTar(zw, t, entries); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return b.Bytes(), nil
}

// writeFileAtomic writes a file through a temporary one in the same folder,
// so that a failed build leaves no half-written output.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
