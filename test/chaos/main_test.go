package chaos_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// Profiles: the default is the short one that `go test ./...` runs.
var (
	flagDuration   = flag.Duration("chaos.duration", 2*time.Minute, "how long TestChaos injects faults (short profile 2m; releases 30m)")
	flagReport     = flag.Bool("chaos.report", false, "write the report of TestChaos to results/latest.md")
	flagSeed       = flag.Int64("chaos.seed", 0, "seed of the fault order and timing (0: a new one, logged)")
	flagCandidates = flag.Int("chaos.candidates", 4, "how many sidecars campaign in TestChaos (3 to 5)")
	flagKeep       = flag.Bool("chaos.keep", false, "keep the sidecars' logs even when the tests pass")
	flagFaults     = flag.String("chaos.faults", "", "comma-separated fault kinds TestChaos injects (default: all): "+strings.Join(faultFlagNames(), ", "))
	flagLogLevel   = flag.String("chaos.log-level", "info", "the sidecars' --log-level")
)

// Shared by the tests of the package, set once by TestMain.
var (
	cluster  *testenv.Cluster
	bin      string // the incumbent binary
	childBin string // ./child
	workDir  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if *flagDuration <= 0 {
		fmt.Fprintf(os.Stderr, "-chaos.duration must be positive, got %v\n", *flagDuration)
		return 2
	}
	if *flagCandidates < 3 || *flagCandidates > 5 {
		fmt.Fprintf(os.Stderr, "-chaos.candidates must be 3, 4 or 5, got %d\n", *flagCandidates)
		return 2
	}
	if _, err := selectedFaults(*flagFaults); err != nil {
		fmt.Fprintf(os.Stderr, "-chaos.faults: %v\n", err)
		return 2
	}
	var err error
	workDir, err = os.MkdirTemp("", "incumbent-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	bin = filepath.Join(workDir, "incumbent")
	childBin = filepath.Join(workDir, "child")
	for _, b := range []struct{ out, pkg string }{{bin, "./cmd/incumbent"}, {childBin, "./test/chaos/child"}} {
		if err := build(b.out, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	began := time.Now()
	cluster, err = testenv.StartCluster(filepath.Join(workDir, "cluster"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "chaos: cluster ready in %v, API server at %s\n", time.Since(began).Round(time.Millisecond), cluster.APIServerAddr())
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	return m.Run()
}

// moduleRoot is the folder of go.mod.
func moduleRoot() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "..")
}

// build compiles a package of this module, with the race detector when the
// tests themselves run with it.
func build(out, pkg string) error {
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = moduleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}
