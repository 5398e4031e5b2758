package inject

import (
	"strings"
	"testing"
	"text/template"
)

// textTemplate executes text with text/template, as the package did before
// expand: the reference expand is held to.
func textTemplate(t *testing.T, name, text string, data any) string {
	t.Helper()
	tmpl := template.Must(template.New("securityContext").Funcs(template.FuncMap{"q": quote}).
		Parse(`{{define "securityContext"}}` + securityContext + `{{end}}`))
	tmpl = template.Must(tmpl.New(name).Parse(text))
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("text/template %s: %v", name, err)
	}
	return b.String()
}

func TestExpandIsTextTemplate(t *testing.T) {
	templates := map[string]string{"sidecar": sidecarTemplate, "installer": installerTemplate,
		"token": tokenVolumeTemplate, "bin": binVolumeTemplate}
	for _, o := range []Options{
		{Lease: "a"},
		{Lease: "a", Mode: Labels, Events: true},
		{Lease: "a", Mode: LeaderPort},
		{Lease: "a", Mode: LeaderPort, HTTPPort: 9440, ControlPort: 9441, LeaderPort: 9442, Image: "example.com/incumbent:v1"},
		{Lease: "a", Mode: Exec},
		{Lease: "a", HostNetwork: true, HTTPPort: 9440, ControlPort: 9441},
	} {
		if err := o.complete(); err != nil {
			t.Fatal(err)
		}
		for name, text := range templates {
			want := textTemplate(t, name, text, o.data())
			got, err := expand(name, text, o.data())
			if err != nil || got != want {
				t.Errorf("%s, %+v: expand = %q, %v\ntext/template: %q", name, o, got, err, want)
			}
		}
	}
	for _, hostNetwork := range []bool{false, true} {
		data := map[string]any{"HostNetwork": hostNetwork, "Mode": Status}
		for _, k := range []string{"Label", "Lease", "Name", "Container", "Image", "NotInjected", "NotHostNetwork",
			"SameVersion", "SameVersionMessage", "NoContainer", "NoContainerMessage", "HostNetworkMessage"} {
			data[k] = k + ` "value" with: YAML's \ characters`
		}
		want := textTemplate(t, "policy", policyTemplate, data)
		got, err := expand("policy", policyTemplate, data)
		if err != nil || got != want {
			t.Errorf("policy, hostNetwork %v: expand = %q, %v\ntext/template: %q", hostNetwork, got, err, want)
		}
	}
}

// TestExpandSyntax covers each construct expand knows, against
// text/template, and what it refuses.
func TestExpandSyntax(t *testing.T) {
	type inner struct{ Promoted string }
	type data struct {
		*inner
		S, Empty   string
		N, Zero    int
		T, F       bool
		L, None    []string
		M          Mode
		unexported string
	}
	d := data{inner: &inner{Promoted: "p"}, S: "s", N: 3, T: true, L: []string{"x"}, None: []string{}, M: LeaderPort, unexported: "u"}
	for _, text := range []string{
		"plain text, no action",
		"{{.S}} {{.N}} {{.Zero}} {{.T}} {{.F}} {{.L}} {{.M}} {{.Promoted}} [{{.Empty}}]",
		"{{q .S}} {{q .Empty}}",
		"a {{if .S}}S{{end}} {{if .Empty}}Empty{{end}} {{if .N}}N{{end}} {{if .Zero}}Zero{{end}}",
		"{{if .T}}T{{end}}{{if .F}}F{{end}}{{if .L}}L{{end}}{{if .None}}None{{end}}{{if .Promoted}}P{{end}}",
		"{{if not .T}}T{{end}}{{if not .F}}F{{end}}{{if not .Empty}}Empty{{end}}",
		"{{if .T}}outer {{if .F}}inner{{end}} {{if not .F}}{{.S}}{{end}}{{end}}",
		"{{if .F}}{{if .T}}never{{end}}{{.S}}{{end}}after",
		"line\n  {{- .S}}\n{{- if .T}}\n  x\n{{- end}}\nend",
		"a   {{.S -}}   \n\n  b {{- .N -}} c",
		"x\n{{template \"securityContext\"}}\ny",
		"{{.S}}}} {\"{{.S}}\": {{.N}}}",
	} {
		want := textTemplate(t, "t", text, d)
		got, err := expand("t", text, d)
		if err != nil || got != want {
			t.Errorf("%q: expand = %q, %v; text/template: %q", text, got, err, want)
		}
	}
	for _, text := range []string{
		"{{.Missing}}", "{{.unexported}}", "{{q .N}}", "{{if .S}}", "{{end}}", "{{.S", "{{range .L}}{{end}}",
		`{{template "none"}}`, "{{.S.Len}}", "{{len .S}}",
	} {
		if got, err := expand("t", text, d); err == nil {
			t.Errorf("%q: expand = %q, want an error", text, got)
		}
	}
	if got, err := expand("t", "{{.Lease}} {{.Missing}}", map[string]any{"Lease": "l"}); err == nil {
		t.Errorf("a missing map key: expand = %q, want an error", got)
	}
	if got, err := expand("t", "{{.S}}", (*data)(nil)); err == nil {
		t.Errorf("nil data: expand = %q, want an error", got)
	}
	if got, err := expand("t", "{{.Promoted}}", data{}); err == nil {
		t.Errorf("a field of a nil embedded struct: expand = %q, want an error", got)
	}
}
