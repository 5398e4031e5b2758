package etcd_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incumbent-io/incumbent/store/etcd"
)

// shared is the etcd member most tests use, each under a key prefix of its
// own. Tests that restart etcd or enable authentication start their own.
var shared *etcdServer

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := os.MkdirTemp("", "incumbent-etcd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	shared, err = newEtcdServer(root, nil)
	if err == nil {
		err = shared.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	return m.Run()
}

// startServer starts an etcd member of the test's own, stopped at cleanup.
func startServer(t *testing.T, tls *serverTLS) *etcdServer {
	t.Helper()
	s, err := newEtcdServer(t.TempDir(), tls)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd member of %s ready at %s in %v", t.Name(), s.Endpoint(), time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// newClient returns a client of the server, closed at cleanup.
func newClient(t *testing.T, cfg etcd.Config) *clientv3.Client {
	t.Helper()
	c, err := etcd.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sharedClient returns a client of the shared member.
func sharedClient(t *testing.T) *clientv3.Client {
	return newClient(t, etcd.Config{Endpoints: []string{shared.Endpoint()}})
}

var (
	nonWord  = regexp.MustCompile(`[^A-Za-z0-9]+`)
	prefixes sync.Map // *testing.T → its key prefix
	prefixN  atomic.Int64
)

// testPrefix is a key prefix of the test's own, fresh for each run of the
// test (go test -count=N reuses the shared member).
func testPrefix(t *testing.T) string {
	if p, ok := prefixes.Load(t); ok {
		return p.(string)
	}
	p, _ := prefixes.LoadOrStore(t, fmt.Sprintf("/test/%s-%d", nonWord.ReplaceAllString(t.Name(), "-"), prefixN.Add(1)))
	return p.(string)
}

// newStore returns the store of the election "lease" under the test's prefix.
func newStore(t *testing.T, c *clientv3.Client) *etcd.Store {
	t.Helper()
	s, err := etcd.New(c, testPrefix(t), "lease")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testContext ends with the test or after a minute.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
