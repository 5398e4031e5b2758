// Package e2e runs the real incumbent binary, several processes at a time,
// against a real kube-apiserver and etcd: each sidecar mode, hand-overs on
// SIGTERM and SIGKILL, the operator commands, RBAC, and flag errors.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/incumbent-io/incumbent/internal/testenv"
)

// Shared by every test of the package.
var (
	env        *testenv.Env
	admin      *kubernetes.Clientset
	bin        string // the incumbent binary
	childBin   string // the test workload (./child)
	kubeconfig string // the administrator's kubeconfig file
	workDir    string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	workDir, err = os.MkdirTemp("", "incumbent-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	bin = filepath.Join(workDir, "incumbent")
	childBin = filepath.Join(workDir, "child")
	if err := build(bin, "./cmd/incumbent"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := build(childBin, "./test/e2e/child"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if admin, err = kubernetes.NewForConfig(env.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfig = filepath.Join(workDir, "admin.kubeconfig")
	if err := writeKubeconfig(kubeconfig, env.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
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

// writeKubeconfig writes a kubeconfig file for cfg (client certificate or
// bearer token).
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["e2e"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e", Namespace: "default"}
	kc.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*kc, path)
}
