package inject

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/incumbent-io/incumbent/internal/buildinfo"
)

// The shape of what inject adds to a pod: one definition, used by inject on
// manifests, by the admission policy, and (through inject) by the examples
// in deploy/examples. The templates are YAML with comments; the values
// interpolated are validated names, numbers and the image, and the
// arguments are added as nodes afterwards, so that nothing a user gives can
// change the YAML's structure.

// sidecarTemplate is the native sidecar of the status, labels and
// leader-port modes.
const sidecarTemplate = `# incumbent, a native sidecar (an init container that keeps running):
# started before the application, stopped after it.
name: {{.Name}}
image: {{.Image}}
restartPolicy: Always
args: []
env:
  # This candidate's identity and pod (--label-pod, --events) and namespace.
  - name: POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - name: POD_NAMESPACE
    valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
  - name: POD_UID
    valueFrom: {fieldRef: {fieldPath: metadata.uid}}
ports:
  - {name: {{.StatusPort}}, containerPort: {{.HTTPPort}}}
{{- if .LeaderPortMode}}
  - {name: {{.LeaderPortName}}, containerPort: {{.LeaderPort}}}
{{- end}}
# /healthz answers 200 from the first moment, also while the sidecar waits
# for the API server (the body says why): the application starts as soon as
# the sidecar serves, and a control-plane blip never restarts the sidecar.
startupProbe:
  httpGet: {path: /healthz, port: {{.StatusPort}}}
  periodSeconds: 1
  failureThreshold: 30
livenessProbe:
  httpGet: {path: /healthz, port: {{.StatusPort}}}
{{- if .LeaderPortMode}}
# Only the leader answers: a native sidecar's readiness counts toward the
# pod's, so only the leader's pod is Ready and gets the Services' traffic.
readinessProbe:
  httpGet: {path: /, port: {{.LeaderPortName}}}
  periodSeconds: 2
  failureThreshold: 1
{{- end}}
# The kubelet runs this as soon as the pod is deleted, while it signals the
# sidecar only after the application has exited: the sidecar steps down at
# once (the application is told, gets --grace or acknowledges), and the next
# leader does not wait for this pod's shutdown. No permission is needed.
lifecycle:
  preStop:
    exec:
      command: [{{.Binary}}, withdraw{{if .ControlAddr}}, "--control-addr={{.ControlAddr}}"{{end}}]
resources:
  requests: {cpu: 5m, memory: 16Mi}
  limits: {memory: 64Mi}
{{template "securityContext"}}
volumeMounts:
  - {name: {{.TokenVolume}}, mountPath: {{.TokenPath}}, readOnly: true}
`

// securityContext is what PodSecurity's restricted profile asks of a
// container; the image runs as the numeric user 65532. The templates
// include it with {{template "securityContext"}}.
const securityContext = `# As PodSecurity's restricted profile asks; the image runs as 65532.
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities: {drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}`

// installerTemplate is exec mode's init container.
const installerTemplate = `# Copies the incumbent binary out of its image (which holds nothing else)
# into the {{.BinVolume}} volume, for the application's container to run.
name: {{.InstallerName}}
image: {{.Image}}
command: [{{.Binary}}, copy-binary, {{.ExecBinary}}]
resources:
  requests: {cpu: 5m, memory: 16Mi}
  limits: {memory: 64Mi}
{{template "securityContext"}}
volumeMounts:
  - {name: {{.BinVolume}}, mountPath: {{.BinDir}}}
`

// tokenVolumeTemplate is the sidecar's own credentials.
const tokenVolumeTemplate = `# incumbent's own API credentials: a token of the pod's service account, the
# cluster's CA and the namespace, as Kubernetes mounts them by default. The
# sidecar has them even with automountServiceAccountToken: false, which keeps
# the application's containers without a token (and without its permissions).
name: {{.TokenVolume}}
projected:
  sources:
    - serviceAccountToken: {path: token, expirationSeconds: 3607}
    - configMap:
        name: kube-root-ca.crt
        items: [{key: ca.crt, path: ca.crt}]
    - downwardAPI:
        items:
          - path: namespace
            fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}
`

// binVolumeTemplate holds exec mode's binary.
const binVolumeTemplate = `# The incumbent binary, copied by the {{.InstallerName}} init container.
name: {{.BinVolume}}
emptyDir: {}
`

// quote writes a string as a YAML (JSON) double-quoted scalar.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// shapeData is what the templates interpolate.
type shapeData struct {
	*Options
	Name, InstallerName, StatusPort, LeaderPortName, Binary, ExecBinary string
	TokenVolume, TokenPath, BinVolume, BinDir, ControlAddr              string
	LeaderPortMode                                                      bool
}

func (o *Options) data() shapeData {
	return shapeData{Options: o, Name: ContainerName, InstallerName: InstallerName, StatusPort: StatusPortName,
		LeaderPortName: LeaderPortName, Binary: buildinfo.ImageBinary, ExecBinary: ExecBinary,
		TokenVolume: TokenVolume, TokenPath: TokenPath, BinVolume: BinVolume, BinDir: BinDir,
		ControlAddr: o.controlAddr(), LeaderPortMode: o.Mode == LeaderPort}
}

// render executes one template into a node.
func (o *Options) render(name, text string) (*yaml.Node, error) {
	s, err := expand(name, text, o.data())
	if err != nil {
		return nil, err
	}
	return parseNode(s)
}

// argsNode returns args as a sequence node, each with its comment.
func argsNode(args []arg) *yaml.Node {
	s := seq()
	for _, a := range args {
		n := str(a.Value)
		if len(a.Comment) > 0 {
			n.HeadComment = "# " + strings.Join(a.Comment, "\n# ")
		}
		s.Content = append(s.Content, n)
	}
	return s
}

// sidecar returns the sidecar container.
func (o *Options) sidecar() (*yaml.Node, error) {
	n, err := o.render("sidecar", sidecarTemplate)
	if err != nil {
		return nil, err
	}
	set(n, "args", argsNode(o.args()), "")
	var c corev1.Container
	if err := decodeStrict(n, &c); err != nil {
		return nil, fmt.Errorf("internal: the sidecar does not decode: %w", err)
	}
	if c.Image != o.Image || !reflect.DeepEqual(c.Args, argValues(o.args())) {
		return nil, fmt.Errorf("internal: the sidecar's image %q or arguments %q are not what was given", c.Image, c.Args)
	}
	return n, nil
}

// installer returns exec mode's init container.
func (o *Options) installer() (*yaml.Node, error) { return o.render("installer", installerTemplate) }

// tokenVolume returns the volume of the sidecar's credentials.
func (o *Options) tokenVolume() (*yaml.Node, error) { return o.render("token", tokenVolumeTemplate) }

// binVolume returns exec mode's volume for the binary.
func (o *Options) binVolume() (*yaml.Node, error) { return o.render("bin", binVolumeTemplate) }
