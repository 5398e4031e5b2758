package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// apiWriter writes one ConfigMap through the Kubernetes API server with
// the pod-bound token of the child's pod, as a controller would: the
// workload of the harness's API-server profile (CHAOS_API set).
type apiWriter struct {
	client    *http.Client
	base      string // https://host:port
	token     string
	namespace string
	name      string
}

// newAPIWriter reads CHAOS_API, CHAOS_TOKEN_FILE, CHAOS_CA_FILE and
// CHAOS_CONFIGMAP (namespace/name); nil when CHAOS_API is unset.
func newAPIWriter() (*apiWriter, error) {
	base := os.Getenv("CHAOS_API")
	if base == "" {
		return nil, nil
	}
	tok, err := os.ReadFile(os.Getenv("CHAOS_TOKEN_FILE"))
	if err != nil {
		return nil, fmt.Errorf("CHAOS_TOKEN_FILE: %w", err)
	}
	ca, err := os.ReadFile(os.Getenv("CHAOS_CA_FILE"))
	if err != nil {
		return nil, fmt.Errorf("CHAOS_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("CHAOS_CA_FILE holds no certificate")
	}
	ns, name, ok := strings.Cut(os.Getenv("CHAOS_CONFIGMAP"), "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("CHAOS_CONFIGMAP %q is not NAMESPACE/NAME", os.Getenv("CHAOS_CONFIGMAP"))
	}
	return &apiWriter{
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}},
		base: base, token: strings.TrimSpace(string(tok)), namespace: ns, name: name,
	}, nil
}

// errRefused is the fence policy's refusal.
var errRefused = errors.New("refused by the fence policy")

// write replaces the ConfigMap (creating it if missing) and returns the
// resourceVersion the API server gave it, errRefused when the fence policy
// refused it, or another error.
func (a *apiWriter) write(term, id string) (int64, error) {
	body, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]string{"name": a.name, "namespace": a.namespace},
		"data":     map[string]string{"term": term, "identity": id},
	})
	if err != nil {
		return 0, err
	}
	path := "/api/v1/namespaces/" + a.namespace + "/configmaps"
	rv, code, msg, err := a.do(http.MethodPut, path+"/"+a.name, body)
	if err == nil && code == http.StatusNotFound {
		rv, code, msg, err = a.do(http.MethodPost, path, body)
	}
	switch {
	case err != nil:
		return 0, err
	case code == http.StatusOK || code == http.StatusCreated:
		return rv, nil
	case code == http.StatusForbidden && strings.Contains(msg, "incumbent fence:"):
		return 0, errRefused
	}
	return 0, fmt.Errorf("status %d: %s", code, msg)
}

func (a *apiWriter) do(method, path string, body []byte) (rv int64, code int, msg string, err error) {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, 0, "", err
	}
	var obj struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(b, &obj)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
		rv, err = strconv.ParseInt(obj.Metadata.ResourceVersion, 10, 64)
		if err != nil {
			return 0, 0, "", fmt.Errorf("resourceVersion %q: %w", obj.Metadata.ResourceVersion, err)
		}
	}
	return rv, resp.StatusCode, obj.Message, nil
}
