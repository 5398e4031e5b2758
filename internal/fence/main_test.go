package fence_test

import (
	"testing"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// env is the real kube-apiserver and etcd of this package's tests.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }
