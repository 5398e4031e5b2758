package buildinfo

import (
	"regexp"
	"runtime"
	"strings"
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

// ValidTag is the grammar of an image tag, as the OCI distribution spec
// writes it.
func TestValidTagIsTheTagGrammar(t *testing.T) {
	grammar := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	cases := []string{"", "a", "A", "0", "_", ".", "-", ".a", "-a", "_a", "a.", "a-", "v0.1.0", "v0.1.0-3-g0123456-dirty",
		"v0.1.1-0.2026-abc+dirty", "a b", "a\n", "a\n\n", "\na", "é", "aé", "a/b", "a:b", "a@b", "a\x00",
		strings.Repeat("a", 127), strings.Repeat("a", 128), strings.Repeat("a", 129), "_" + strings.Repeat(".", 127), "_" + strings.Repeat("-", 128)}
	for c := 0; c < 256; c++ {
		cases = append(cases, string(rune(c)), "a"+string([]byte{byte(c)}), string([]byte{byte(c)})+"a")
	}
	for _, v := range cases {
		if got, want := ValidTag(v), grammar.MatchString(v); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", v, got, want)
		}
	}
}
