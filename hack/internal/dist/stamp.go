package dist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// Stamp is what a build is stamped with.
type Stamp struct {
	// Version is the image tag and what `incumbent version` prints:
	// `git describe --tags --always --dirty` (v0.1.0 on a tag).
	Version string
	// Revision is the full commit hash.
	Revision string
	// Time is every timestamp in the outputs: the commit time, or
	// SOURCE_DATE_EPOCH when that is set.
	Time time.Time
}

var revisionPattern = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Validate checks that the stamp can name an image and be linked in.
func (s Stamp) Validate() error {
	if !buildinfo.ValidTag(s.Version) || s.Version == buildinfo.Devel {
		return fmt.Errorf("version %q cannot be an image tag (letters, digits, '_', '.', '-'; at most 128)", s.Version)
	}
	if !revisionPattern.MatchString(s.Revision) {
		return fmt.Errorf("revision %q is not a full commit hash", s.Revision)
	}
	if s.Time.IsZero() {
		return errors.New("no timestamp")
	}
	return nil
}

// GitStamp reads the stamp of the work tree at dir: the version from git
// describe (unless version is not empty), the revision of HEAD, and the
// commit time of HEAD unless SOURCE_DATE_EPOCH is set.
func GitStamp(ctx context.Context, dir, version string) (Stamp, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	var s Stamp
	var err error
	if s.Version = version; s.Version == "" {
		if s.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
			return Stamp{}, err
		}
	}
	if s.Revision, err = git("rev-parse", "HEAD"); err != nil {
		return Stamp{}, err
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git("log", "-1", "--format=%ct", "HEAD"); err != nil {
			return Stamp{}, err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return Stamp{}, fmt.Errorf("timestamp %q (SOURCE_DATE_EPOCH or the commit time): %w", epoch, err)
	}
	s.Time = time.Unix(sec, 0).UTC()
	return s, s.Validate()
}

// ModuleRoot is the folder of the main module's go.mod, as the go command
// finds it from the current folder.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the incumbent module: run this from its work tree")
	}
	return filepath.Dir(gomod), nil
}
