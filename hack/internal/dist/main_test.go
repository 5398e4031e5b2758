package dist

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The tests share one Builder, so that each platform's binary is
// cross-compiled once for the image, the docker-archive and the release.
var (
	testStamp = Stamp{Version: "v0.0.0-test", Revision: "0123456789abcdef0123456789abcdef01234567",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	testBuilder *Builder
	testIdx     v1.ImageIndex // built on first use by testIndex
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	root, err := ModuleRoot(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "incumbent-dist-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	testBuilder = &Builder{ModuleDir: root, OutDir: tmp, Stamp: testStamp, Log: os.Stderr}
	return m.Run()
}

// testIndex is the image index of ImagePlatforms, built once.
func testIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	if testIdx == nil {
		idx, err := BuildIndex(context.Background(), testBuilder, ImagePlatforms)
		if err != nil {
			t.Fatal(err)
		}
		testIdx = idx
	}
	return testIdx
}
