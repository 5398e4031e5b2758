//go:build !unix

package file

import (
	"context"
	"fmt"
	"os"
	"runtime"
)

var errUnsupported = fmt.Errorf("file store: not supported on %s (it needs flock(2))", runtime.GOOS)

func checkPlatform() error { return errUnsupported }

func lockFile(ctx context.Context, path string) (lock *os.File, unlock func(), err error) {
	return nil, nil, errUnsupported
}

func checkWritable(dir string) error { return errUnsupported }
