package kube_test

import (
	"testing"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// env is the real kube-apiserver and etcd this package's tests run against,
// started once for the package.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }
