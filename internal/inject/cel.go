package inject

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// celLiteral writes v, a typed API value (a corev1.Container, say), as a
// CEL object literal of the admission policy's object type typeName
// ("Object.spec.initContainers"): exactly the fields its JSON holds, each
// struct typed by its path, maps and lists as CEL maps and lists.
func celLiteral(v any, typeName string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var j any
	if err := json.Unmarshal(b, &j); err != nil {
		return "", err
	}
	var s strings.Builder
	if err := writeCEL(&s, j, reflect.TypeOf(v), typeName, 0); err != nil {
		return "", err
	}
	return s.String(), nil
}

var (
	intOrStringType = reflect.TypeOf(intstr.IntOrString{})
	quantityType    = reflect.TypeOf(resource.Quantity{})
)

// celReserved are CEL's reserved words; Kubernetes escapes a property of
// that name as __name__.
var celReserved = map[string]bool{
	"true": true, "false": true, "null": true, "in": true, "as": true, "break": true, "const": true,
	"continue": true, "else": true, "for": true, "function": true, "if": true, "import": true, "let": true,
	"loop": true, "package": true, "namespace": true, "return": true, "var": true, "void": true, "while": true,
}

func celField(name string) string {
	if celReserved[name] {
		return "__" + name + "__"
	}
	return name
}

func writeCEL(s *strings.Builder, j any, t reflect.Type, typeName string, depth int) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pad := strings.Repeat("  ", depth+1)
	end := strings.Repeat("  ", depth)
	switch {
	case t == intOrStringType || t == quantityType:
		return writeScalar(s, j)
	case t.Kind() == reflect.Struct:
		m, ok := j.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: a %T where an object belongs", typeName, j)
		}
		s.WriteString(typeName + "{")
		n := 0
		for _, f := range jsonFields(t) {
			val, present := m[f.name]
			if !present {
				continue
			}
			if n > 0 {
				s.WriteString(",")
			}
			n++
			s.WriteString("\n" + pad + celField(f.name) + ": ")
			if err := writeCEL(s, val, f.typ, typeName+"."+celField(f.name), depth+1); err != nil {
				return err
			}
		}
		if n != len(m) {
			return fmt.Errorf("%s: %d of its %d fields are not in %s", typeName, len(m)-n, len(m), t)
		}
		s.WriteString("\n" + end + "}")
	case t.Kind() == reflect.Slice:
		l, ok := j.([]any)
		if !ok {
			return fmt.Errorf("%s: a %T where a list belongs", typeName, j)
		}
		s.WriteString("[")
		for i, e := range l {
			if i > 0 {
				s.WriteString(", ")
			}
			if err := writeCEL(s, e, t.Elem(), typeName, depth); err != nil {
				return err
			}
		}
		s.WriteString("]")
	case t.Kind() == reflect.Map:
		m, ok := j.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: a %T where a map belongs", typeName, j)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				s.WriteString(", ")
			}
			s.WriteString(strconv.Quote(k) + ": ")
			if err := writeCEL(s, m[k], t.Elem(), typeName, depth); err != nil {
				return err
			}
		}
		s.WriteString("}")
	default:
		return writeScalar(s, j)
	}
	return nil
}

func writeScalar(s *strings.Builder, j any) error {
	switch x := j.(type) {
	case string:
		s.WriteString(strconv.Quote(x))
	case bool:
		s.WriteString(strconv.FormatBool(x))
	case float64:
		if x != float64(int64(x)) {
			return fmt.Errorf("a number with a fraction, %v, has no place in a pod", x)
		}
		s.WriteString(strconv.FormatInt(int64(x), 10))
	default:
		return fmt.Errorf("a %T has no CEL literal here", j)
	}
	return nil
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields returns the JSON fields of a struct type in order, those of
// inlined structs (a Probe's ProbeHandler) in their place.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "" && (f.Anonymous || strings.Contains(opts, "inline")):
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			out = append(out, jsonFields(ft)...)
		case name != "":
			out = append(out, jsonField{name, f.Type})
		}
	}
	return out
}
