package dist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewManifest is the part of a krew Plugin manifest the test reads.
type krewManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version   string `json:"version"`
		Platforms []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// The krew manifest template, filled in by the commands its header gives
// (run as written, on a release folder of fake archives), names every
// archive a release holds for the release's platforms, with its checksum,
// and the binary inside it.
func TestKrewManifestTemplate(t *testing.T) {
	const version = "v0.1.0" // the header's example
	tmpl, err := os.ReadFile(filepath.Join(testBuilder.ModuleDir, "deploy", "krew", "incumbent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The header's commands, but the install.
	var script []string
	for _, line := range strings.Split(string(tmpl), "\n") {
		if cmd, ok := strings.CutPrefix(line, "#   "); ok && !strings.Contains(cmd, "krew install") {
			script = append(script, cmd)
		}
	}
	if len(script) == 0 || !strings.HasPrefix(script[0], "VERSION="+version+" ") {
		t.Fatalf("the template's header gives no commands for %s:\n%s", version, strings.Join(script, "\n"))
	}
	// A release folder as Release writes it, with fake archives.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "deploy", "krew"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy", "krew", "incumbent.yaml"), tmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	stamp := Stamp{Version: version}
	want := map[string]string{} // archive name → its checksum
	var sums strings.Builder
	for _, name := range []string{ImageTarballName(stamp), "manifests/exec.yaml"} {
		fmt.Fprintf(&sums, "%064x  %s\n", 0, name)
	}
	for _, p := range ReleasePlatforms {
		name := ArchiveName(stamp, p)
		h := sha256.Sum256([]byte("archive " + name))
		want[name] = hex.EncodeToString(h[:])
		fmt.Fprintf(&sums, "%s  %s\n", want[name], name)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dist", ChecksumsFile), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-e", "-c", strings.Join(script, "\n"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the header's commands: %v\n%s", err, out)
	}
	filled, err := os.ReadFile(filepath.Join(dir, "incumbent.krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(filled), "{{") {
		t.Errorf("placeholders left:\n%s", filled)
	}
	var m krewManifest
	if err := yaml.Unmarshal(filled, &m); err != nil {
		t.Fatal(err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "incumbent" ||
		m.Spec.Version != version {
		t.Errorf("manifest %+v", m)
	}
	var platforms []string
	for _, p := range m.Spec.Platforms {
		pl := Platform{OS: p.Selector.MatchLabels["os"], Arch: p.Selector.MatchLabels["arch"]}
		platforms = append(platforms, pl.String())
		name := ArchiveName(stamp, pl)
		if p.URI != "https://github.com/incumbent-io/incumbent/releases/download/"+version+"/"+name {
			t.Errorf("%s: uri %s", pl, p.URI)
		}
		if p.SHA256 != want[name] {
			t.Errorf("%s: sha256 %q, want %q", pl, p.SHA256, want[name])
		}
		// Release archives the binary under this name (BinaryArchive).
		if p.Bin != "incumbent" {
			t.Errorf("%s: bin %q", pl, p.Bin)
		}
	}
	var wantPlatforms []string
	for _, p := range ReleasePlatforms {
		wantPlatforms = append(wantPlatforms, p.String())
	}
	if !slices.Equal(platforms, wantPlatforms) {
		t.Errorf("the manifest has platforms %q, a release %q", platforms, wantPlatforms)
	}
}
