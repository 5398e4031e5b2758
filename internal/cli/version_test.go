package cli

import (
	"context"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

func TestVersionPrintsTheStamp(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	platform := runtime.GOOS + "/" + runtime.GOARCH

	e, out, errb := fakeEnv(t, nil, "version")
	e.Version, e.Revision = "v0.1.0", rev
	if code := Main(context.Background(), *e); code != 0 {
		t.Fatalf("version: exit %d, %s", code, errb)
	}
	want := "incumbent v0.1.0 (commit 0123456789ab, " + runtime.Version() + ", " + platform + ")\n"
	if out.String() != want {
		t.Errorf("version printed %q, want %q", out, want)
	}

	e, out, errb = fakeEnv(t, nil, "version", "-o", "json")
	e.Version, e.Revision = "v0.1.0", rev
	if code := Main(context.Background(), *e); code != 0 {
		t.Fatalf("version -o json: exit %d, %s", code, errb)
	}
	var got buildinfo.Info
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("version -o json printed %q: %v", out, err)
	}
	wantInfo := buildinfo.Info{Version: "v0.1.0", Revision: rev, GoVersion: runtime.Version(), Platform: platform,
		Image: "ghcr.io/incumbent-io/incumbent:v0.1.0"}
	if got != wantInfo {
		t.Errorf("version -o json = %+v, want %+v", got, wantInfo)
	}

	e, _, errb = fakeEnv(t, nil, "version", "-o", "yaml")
	if code := Main(context.Background(), *e); code != ExitUsage {
		t.Errorf("version -o yaml: exit %d (%s), want %d", code, errb, ExitUsage)
	}
}
