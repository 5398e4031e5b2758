package dist

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestGitStamp reads this work tree's stamp.
func TestGitStamp(t *testing.T) {
	ctx := context.Background()
	s, err := GitStamp(ctx, testBuilder.ModuleDir, "")
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", testBuilder.ModuleDir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision != strings.TrimSpace(string(head)) || s.Version == "" || s.Time.IsZero() {
		t.Errorf("GitStamp = %+v, HEAD %s", s, head)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767323045")
	s, err = GitStamp(ctx, testBuilder.ModuleDir, "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "v9.9.9" || s.Time.Unix() != 1767323045 {
		t.Errorf("GitStamp with --version and SOURCE_DATE_EPOCH = %+v", s)
	}
	if _, err := GitStamp(ctx, testBuilder.ModuleDir, "v1+dirty"); err == nil {
		t.Error("a version that is no image tag is accepted")
	}
}

func TestParsePlatforms(t *testing.T) {
	ps, err := ParsePlatforms("linux/arm64, linux/amd64,linux/arm64")
	if err != nil || FormatPlatforms(ps) != "linux/amd64,linux/arm64" {
		t.Errorf("ParsePlatforms: %v, %v: want sorted, without duplicates", ps, err)
	}
	for _, bad := range []string{"", "linux", "windows/amd64", "linux/386", "linux/arm64/v8"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("ParsePlatforms(%q) is accepted", bad)
		}
	}
}
