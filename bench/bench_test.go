package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A smoke run of the benchmark, so that it cannot rot: every section is
// measured for both implementations and the files are written.
func TestQuickBenchmark(t *testing.T) {
	o, err := parseFlags([]string{"-quick", "-out", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	report, err := run(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Graceful hand-over", "## Crash take-over", "## API cost", "## Scale", "## Footprint", "| incumbent |", "| client-go |"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	for _, f := range []string{"latest.md", "latest.svg"} {
		if _, err := os.Stat(filepath.Join(o.out, f)); err != nil {
			t.Error(err)
		}
	}
	t.Log("\n" + report)
}

func TestFlagsRejectBadInput(t *testing.T) {
	for _, args := range [][]string{{"-samples", "0"}, {"-scale", "ten"}, {"-scale", "-3"}, {"-cost-window", "-1s"}, {"-nope"}, {"-only", "scale"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted bad input", args)
		}
	}
}

// -only footprint measures the footprint alone and writes no files.
func TestOnlyFootprint(t *testing.T) {
	out := t.TempDir()
	o, err := parseFlags([]string{"-only", "footprint", "-footprint-window", "1s", "-out", out})
	if err != nil {
		t.Fatal(err)
	}
	report, err := run(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, "## Footprint") || !strings.Contains(report, "| leader |") || !strings.Contains(report, "| follower |") ||
		strings.Contains(report, "## Graceful hand-over") || strings.Contains(report, "## Scale") {
		t.Errorf("report:\n%s", report)
	}
	if files, err := os.ReadDir(out); err != nil || len(files) > 0 {
		t.Errorf("-only wrote %v (%v)", files, err)
	}
	t.Log("\n" + report)
}
