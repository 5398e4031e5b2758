package inject

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// expand executes one of this package's templates with data (a struct, or a
// map with string keys). The templates are written in text/template's
// syntax, and expand gives what text/template gives for them, but it knows
// only what they use:
//
//	{{.Field}}                  a field of data, printed as fmt.Print does
//	{{q .Field}}                a string field as a double-quoted scalar
//	{{if .Field}} ... {{end}}   text/template's truth: not false, 0, "" or empty
//	{{if not .Field}} ... {{end}}
//	{{template "name"}}         a partial (see partial), without data
//	{{- ...}}, {{... -}}        trim the white space before, after
//
// text/template itself is not used: a binary that can execute a
// text/template keeps every exported method of every type it holds (a
// template may call any method by name), which is about 4.8 MB of the
// stripped binary and 3 MiB of the idle sidecar's resident memory (see
// docs/sidecar.md, "Measured"); TestExpandIsTextTemplate checks expand
// against text/template.
func expand(name, text string, data any) (string, error) {
	toks, err := lexTemplate(text)
	if err != nil {
		return "", fmt.Errorf("internal template %s: %w", name, err)
	}
	var b strings.Builder
	if err := execTokens(&b, toks, data, 0); err != nil {
		return "", fmt.Errorf("internal template %s: %w", name, err)
	}
	return b.String(), nil
}

// partial returns the text of a template that {{template "name"}} names.
func partial(name string) (string, bool) {
	switch name {
	case "securityContext":
		return securityContext, true
	}
	return "", false
}

// templateToken is literal text, or an action (the text between the braces,
// its trim markers removed).
type templateToken struct {
	text   string
	action bool
}

// lexTemplate splits text into literal text and actions, trimming the text
// beside a trim marker as text/template does.
func lexTemplate(text string) ([]templateToken, error) {
	const space = " \t\r\n"
	var toks []templateToken
	for text != "" {
		i := strings.Index(text, "{{")
		if i < 0 {
			toks = append(toks, templateToken{text: text})
			break
		}
		lit, rest := text[:i], text[i+2:]
		if strings.HasPrefix(rest, "- ") {
			lit, rest = strings.TrimRight(lit, space), rest[2:]
		}
		j := strings.Index(rest, "}}")
		if j < 0 {
			return nil, errors.New("unclosed action")
		}
		act := rest[:j]
		text = rest[j+2:]
		if strings.HasSuffix(act, " -") {
			act, text = act[:len(act)-2], strings.TrimLeft(text, space)
		}
		if lit != "" {
			toks = append(toks, templateToken{text: lit})
		}
		toks = append(toks, templateToken{text: strings.TrimSpace(act), action: true})
	}
	return toks, nil
}

// execTokens writes toks with data into b. depth counts the partials being
// executed, against a partial that names itself.
func execTokens(b *strings.Builder, toks []templateToken, data any, depth int) error {
	if depth > 10 {
		return errors.New("partials nested too deep")
	}
	var emit []bool // one per open {{if}}: whether its body is written
	on := func() bool { return len(emit) == 0 || emit[len(emit)-1] }
	for _, t := range toks {
		if !t.action {
			if on() {
				b.WriteString(t.text)
			}
			continue
		}
		act := t.text
		switch {
		case act == "end":
			if len(emit) == 0 {
				return errors.New("{{end}} without {{if}}")
			}
			emit = emit[:len(emit)-1]
		case strings.HasPrefix(act, "if "):
			if !on() {
				emit = append(emit, false)
				continue
			}
			ref, not := strings.CutPrefix(strings.TrimSpace(act[len("if "):]), "not ")
			v, err := templateField(data, strings.TrimSpace(ref))
			if err != nil {
				return err
			}
			emit = append(emit, templateTruth(v) != not)
		case !on():
		case strings.HasPrefix(act, "template "):
			name, err := strconv.Unquote(strings.TrimSpace(act[len("template "):]))
			if err != nil {
				return fmt.Errorf("{{%s}}: %w", act, err)
			}
			text, ok := partial(name)
			if !ok {
				return fmt.Errorf("no template %q", name)
			}
			ptoks, err := lexTemplate(text)
			if err != nil {
				return fmt.Errorf("template %s: %w", name, err)
			}
			if err := execTokens(b, ptoks, nil, depth+1); err != nil {
				return fmt.Errorf("template %s: %w", name, err)
			}
		case strings.HasPrefix(act, "q "):
			v, err := templateField(data, strings.TrimSpace(act[len("q "):]))
			if err != nil {
				return err
			}
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("{{%s}}: q wants a string, not %T", act, v)
			}
			b.WriteString(quote(s))
		case strings.HasPrefix(act, "."):
			v, err := templateField(data, act)
			if err != nil {
				return err
			}
			fmt.Fprint(b, v)
		default:
			return fmt.Errorf("unsupported action {{%s}}", act)
		}
	}
	if len(emit) > 0 {
		return errors.New("{{if}} without {{end}}")
	}
	return nil
}

// templateField returns the field ref (".Name") of data: a field of a
// struct (or one promoted from an embedded struct), or a map's entry.
func templateField(data any, ref string) (any, error) {
	name, ok := strings.CutPrefix(ref, ".")
	if !ok || name == "" || strings.ContainsAny(name, ". \t") {
		return nil, fmt.Errorf("unsupported reference %q: want .Field", ref)
	}
	v := reflect.ValueOf(data)
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return nil, fmt.Errorf("%s: data is nil", ref)
		}
		v = v.Elem()
	}
	switch {
	case !v.IsValid():
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		e := v.MapIndex(reflect.ValueOf(name).Convert(v.Type().Key()))
		if !e.IsValid() {
			return nil, fmt.Errorf("%s: no such key", ref)
		}
		return e.Interface(), nil
	case v.Kind() == reflect.Struct:
		sf, ok := v.Type().FieldByName(name)
		if !ok || !sf.IsExported() {
			return nil, fmt.Errorf("%s: no such exported field in %s", ref, v.Type())
		}
		f, err := v.FieldByIndexErr(sf.Index)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		return f.Interface(), nil
	}
	return nil, fmt.Errorf("%s: data is %T, not a struct or a map", ref, data)
}

// templateTruth is text/template's truth of a value in {{if}}.
func templateTruth(v any) bool {
	r := reflect.ValueOf(v)
	switch {
	case !r.IsValid():
		return false
	case r.Kind() == reflect.Struct:
		return true
	case r.Kind() == reflect.Array, r.Kind() == reflect.Slice, r.Kind() == reflect.Map, r.Kind() == reflect.String, r.Kind() == reflect.Chan:
		return r.Len() > 0
	}
	return !r.IsZero()
}
