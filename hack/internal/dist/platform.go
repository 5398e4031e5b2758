package dist

import (
	"fmt"
	"slices"
	"strings"
)

// Platform is a GOOS/GOARCH pair.
type Platform struct {
	OS, Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// Platforms that a release and an image are built for by default.
var (
	ImagePlatforms   = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}
	ReleasePlatforms = []Platform{{"darwin", "amd64"}, {"darwin", "arm64"}, {"linux", "amd64"}, {"linux", "arm64"}}
)

// ParsePlatforms reads a comma-separated list such as
// "linux/amd64,linux/arm64", and returns it sorted, without duplicates, so
// that the order given does not change a digest. Only linux and darwin on
// amd64 and arm64 are supported.
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		goos, arch, ok := strings.Cut(strings.TrimSpace(f), "/")
		p := Platform{goos, arch}
		if !ok || (goos != "linux" && goos != "darwin") || (arch != "amd64" && arch != "arm64") {
			return nil, fmt.Errorf("platform %q: want linux or darwin / amd64 or arm64, e.g. linux/arm64", f)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Platform) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), nil
}

// FormatPlatforms is the inverse of ParsePlatforms.
func FormatPlatforms(ps []Platform) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
