package buildinfo

import (
	"runtime"
	"testing"
)

func TestImage(t *testing.T) {
	for version, want := range map[string]string{
		"v0.1.0":                  "ghcr.io/incumbent-io/incumbent:v0.1.0",
		"v0.1.0-3-g0123456-dirty": "ghcr.io/incumbent-io/incumbent:v0.1.0-3-g0123456-dirty",
		"0123456":                 "ghcr.io/incumbent-io/incumbent:0123456",
		Devel:                     "ghcr.io/incumbent-io/incumbent:latest",
		"":                        "ghcr.io/incumbent-io/incumbent:latest",
		"v0.1.1-0.2026-abc+dirty": "ghcr.io/incumbent-io/incumbent:latest", // '+' is no tag character
		"-v1":                     "ghcr.io/incumbent-io/incumbent:latest",
	} {
		if got := Image(version); got != want {
			t.Errorf("Image(%q) = %q, want %q", version, got, want)
		}
	}
}

func TestReadPrefersTheStamp(t *testing.T) {
	in := Read("v1.2.3", "abc")
	if in.Version != "v1.2.3" || in.Revision != "abc" || in.Image != ImageRepository+":v1.2.3" ||
		in.GoVersion != runtime.Version() || in.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Read = %+v", in)
	}
	if in := Read("", ""); in.Version == "" || in.Image == "" {
		t.Errorf("an unstamped build has no version: %+v", in)
	}
}
