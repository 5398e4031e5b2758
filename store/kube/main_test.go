package kube_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// env is the real kube-apiserver and etcd this package's tests run against,
// started once for the package.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the test API server:", err)
		}
	}()
	return m.Run()
}
