// Package testenv starts a real kube-apiserver and etcd for tests, through
// controller-runtime's envtest. The binaries are built from the Go module
// proxy by hack/testbin.sh into a per-user cache on first use, so a test
// never skips for want of them.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Env is a running kube-apiserver with its etcd.
type Env struct {
	env *envtest.Environment
	// Config is an administrator's client configuration.
	Config *rest.Config
}

// Binaries returns the folder holding kube-apiserver and etcd, building them
// when missing. KUBEBUILDER_ASSETS, when set, names the folder instead.
func Binaries() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testenv: cannot locate the source tree")
	}
	script := filepath.Join(filepath.Dir(self), "..", "..", "hack", "testbin.sh")
	var out, errb bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testenv: %s: %w\n%s", script, err, errb.String())
	}
	return strings.TrimSpace(out.String()), nil
}

// Start builds the binaries if needed and starts the control plane.
func Start() (*Env, error) {
	dir, err := Binaries()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("testenv: start kube-apiserver and etcd from %s: %w", dir, err)
	}
	return &Env{env: env, Config: cfg}, nil
}

// Stop stops the control plane and removes its files.
func (e *Env) Stop() error { return e.env.Stop() }

// User returns the client configuration of a new user, authenticated but
// granted nothing until RBAC objects bind it.
func (e *Env) User(name string, groups ...string) (*rest.Config, error) {
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: groups}, e.Config)
	if err != nil {
		return nil, fmt.Errorf("testenv: add user %s: %w", name, err)
	}
	return u.Config(), nil
}

// Main is a package's whole TestMain: it starts the control plane into
// *env, runs the tests, stops the control plane and exits with the tests'
// code. A control plane that cannot start fails the package.
func Main(m *testing.M, env **Env) {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stop the control plane:", err)
	}
	os.Exit(code)
}

// EtcdEndpoint is the client URL of the control plane's etcd, for tests of
// the etcd backend (the API server keeps its own keys under /registry).
func (e *Env) EtcdEndpoint() string { return e.env.ControlPlane.Etcd.URL.String() }
