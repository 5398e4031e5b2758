package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2"
)

func TestFormatDefaultsToJSONInAPod(t *testing.T) {
	var b bytes.Buffer
	for _, c := range []struct {
		inPod bool
		want  string
	}{{true, `{"time":`}, {false, "time="}} {
		b.Reset()
		l, err := New(&b, Config{InPod: c.inPod})
		if err != nil {
			t.Fatal(err)
		}
		l.Info("hello")
		if !strings.HasPrefix(b.String(), c.want) {
			t.Errorf("in pod %v: %q", c.inPod, b.String())
		}
		if got := (Config{InPod: c.inPod}).IsJSON(); got != c.inPod {
			t.Errorf("in pod %v: IsJSON %v", c.inPod, got)
		}
	}
	if (Config{Format: Text, InPod: true}).IsJSON() {
		t.Error("--log-format text in a pod is JSON")
	}
}

func TestInvalidConfigNamesTheFlag(t *testing.T) {
	for c, want := range map[Config]string{
		{Format: "xml"}: `invalid --log-format "xml": want json or text`,
		{Level: "loud"}: `invalid --log-level "loud"`,
	} {
		if _, err := New(&bytes.Buffer{}, c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", c, err, want)
		}
	}
}

// TestDurationsReadAsDurations logs durations at the top level, in a
// group, under WithGroup and through With: each must read "15s" or "1.5s"
// in both formats.
func TestDurationsReadAsDurations(t *testing.T) {
	for _, format := range []string{JSON, Text} {
		var b bytes.Buffer
		l, err := New(&b, Config{Format: format})
		if err != nil {
			t.Fatal(err)
		}
		l.With("with", 15*time.Second).WithGroup("g").Info("timings",
			"lease_duration", 15*time.Second, slog.Group("nested", "grace", 1500*time.Millisecond))
		out := b.String()
		if format == Text {
			for _, want := range []string{"with=15s", "g.lease_duration=15s", "g.nested.grace=1.5s"} {
				if !strings.Contains(out, want) {
					t.Errorf("text: no %q in %q", want, out)
				}
			}
			continue
		}
		var rec struct {
			With string `json:"with"`
			G    struct {
				LeaseDuration string `json:"lease_duration"`
				Nested        struct {
					Grace string `json:"grace"`
				} `json:"nested"`
			} `json:"g"`
		}
		if err := json.Unmarshal(b.Bytes(), &rec); err != nil {
			t.Fatalf("json: %v in %q", err, out)
		}
		if rec.With != "15s" || rec.G.LeaseDuration != "15s" || rec.G.Nested.Grace != "1.5s" {
			t.Errorf("json: durations %+v in %q, want 15s, 15s, 1.5s", rec, out)
		}
	}
}

// TestKlogLogsThroughTheRoute logs through klog's own functions, as
// client-go does: while routed, every line is a JSON record of the route's
// handler, at the route's level; after restore, the route is gone.
func TestKlogLogsThroughTheRoute(t *testing.T) {
	var b bytes.Buffer
	l, err := New(&b, Config{Format: JSON})
	if err != nil {
		t.Fatal(err)
	}
	restore := RouteKlog(l.With("invocation", 1).Handler())
	klog.ErrorS(errors.New("unexpected EOF"), "Unexpected error when reading response body", "after", 2*time.Second)
	klog.InfoS("structured", "k", "v")
	klog.Warningf("printf %d", 7)
	klog.Error("plain error")
	klog.V(4).InfoS("too verbose for klog's default verbosity")
	klog.Background().WithValues("ctx", "x").WithName("sub").Info("contextual")
	klog.Flush()

	var lines []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		wantLogger := KlogName
		if m["msg"] == "contextual" {
			wantLogger = KlogName + "/sub"
		}
		if m["logger"] != wantLogger || m["invocation"] != float64(1) || strings.Count(line, `"logger"`) != 1 {
			t.Errorf("record without logger=klog and the route's attributes: %v", m)
		}
		lines = append(lines, m)
	}
	want := []struct{ level, msg string }{
		{"ERROR", "Unexpected error when reading response body"},
		{"INFO", "structured"}, {"INFO", "printf 7"}, {"ERROR", "plain error"}, {"INFO", "contextual"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if lines[i]["level"] != w.level || lines[i]["msg"] != w.msg {
			t.Errorf("record %d: %v, want level %s msg %q", i, lines[i], w.level, w.msg)
		}
	}
	if lines[0]["err"] != "unexpected EOF" || lines[0]["after"] != "2s" {
		t.Errorf("klog's error record: %v, want err and after=2s", lines[0])
	}

	// A second route replaces the first until it is restored.
	var b2 bytes.Buffer
	l2, _ := New(&b2, Config{Format: JSON, Level: "error"})
	restore2 := RouteKlog(l2.Handler())
	klog.InfoS("below the second route's level")
	klog.ErrorS(nil, "to the second route")
	restore2()
	restore2()
	klog.ErrorS(nil, "back to the first route")
	restore()
	if !strings.Contains(b2.String(), "to the second route") || strings.Contains(b2.String(), "below the") {
		t.Errorf("second route got %q", b2.String())
	}
	if s := b.String(); strings.Contains(s, "to the second route") || !strings.Contains(s, "back to the first route") {
		t.Errorf("first route got %q", s)
	}
}
