package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Helpers on yaml.v3 nodes. inject edits the parsed YAML in place, so that
// what it does not change keeps its comments, its order and its style.

// deref follows an alias.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// get returns the value of key in mapping m, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// path returns the value at keys below m, or nil.
func path(m *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		m = get(m, k)
	}
	return m
}

// scalar returns the value of a scalar node, or "".
func scalar(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

// set sets key in mapping m to v: in place when the key exists, else
// inserted before the first of before that m holds, else appended. comment
// becomes the new key's head comment.
func set(m *yaml.Node, key string, v *yaml.Node, comment string, before ...string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, HeadComment: comment}
	at := len(m.Content)
	for _, b := range before {
		found := false
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == b {
				at, found = i, true
				break
			}
		}
		if found {
			break
		}
	}
	if at == len(m.Content) && at > 0 {
		// A comment after the mapping's last entry stays last.
		last := m.Content[at-2]
		k.FootComment = joinComments(last.FootComment, takeTrailing(m.Content[at-1]))
		last.FootComment = ""
	}
	// The comment above the key we insert before stays above that key.
	m.Content = append(m.Content[:at], append([]*yaml.Node{k, v}, m.Content[at:]...)...)
}

// appendItem appends n to sequence s; a comment after the last item stays
// last.
func appendItem(s, n *yaml.Node) {
	if len(s.Content) > 0 {
		if foot := takeTrailing(s.Content[len(s.Content)-1]); foot != "" {
			n.FootComment = joinComments(n.FootComment, foot)
		}
	}
	s.Content = append(s.Content, n)
}

// takeTrailing removes and returns the foot comments along the last
// entries of n, where yaml.v3 puts a comment written after a block that
// ends there.
func takeTrailing(n *yaml.Node) string {
	var parts []string
	for n != nil {
		if n.FootComment != "" {
			parts = append(parts, n.FootComment)
			n.FootComment = ""
		}
		if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
			break
		}
		if n.Kind == yaml.MappingNode {
			if k := n.Content[len(n.Content)-2]; k.FootComment != "" {
				parts = append(parts, k.FootComment)
				k.FootComment = ""
			}
		}
		n = n.Content[len(n.Content)-1]
	}
	return joinComments(parts...)
}

// remove deletes key from mapping m.
func remove(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

// str returns a string scalar node.
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// seq returns a block sequence node of the given items.
func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: items}
}

// mapping returns an empty block mapping node.
func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

// named returns the element of sequence s whose name is name, and its
// index; nil and -1 when there is none.
func named(s *yaml.Node, name string) (*yaml.Node, int) {
	s = deref(s)
	if s == nil || s.Kind != yaml.SequenceNode {
		return nil, -1
	}
	for i, it := range s.Content {
		if scalar(get(it, "name")) == name {
			return deref(it), i
		}
	}
	return nil, -1
}

// plain decodes a node into plain Go values (maps, slices, strings,
// numbers), which compare without comments or styles.
func plain(n *yaml.Node) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// equal reports whether two nodes hold the same data, whatever their
// comments and styles.
func equal(a, b *yaml.Node) bool {
	va, errA := plain(a)
	vb, errB := plain(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}

// differences names the top-level keys of two mappings whose values
// differ, for an error message.
func differences(have, want *yaml.Node) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range []*yaml.Node{want, have} {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k := m.Content[i].Value
			if seen[k] {
				continue
			}
			seen[k] = true
			a, b := get(have, k), get(want, k)
			if a == nil || b == nil || !equal(a, b) {
				out = append(out, k)
			}
		}
	}
	return out
}

// decodeStrict decodes a node into a typed Kubernetes value through JSON,
// refusing unknown fields.
func decodeStrict(n *yaml.Node, into any) error {
	v, err := plain(n)
	if err != nil {
		return err
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// jsonable turns the map[string]any of YAML decoding into JSON-encodable
// values (yaml.v3 already uses string keys for string-keyed mappings; any
// other key is printed).
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	}
	return v
}

// parseNode parses one YAML value (a template's output) into a node.
func parseNode(text string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("internal template: %w\n%s", err, text)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("internal template: not one YAML value:\n%s", text)
	}
	n := doc.Content[0]
	// The comment above a document belongs to its value once that is
	// placed in another document: on the mapping, so that in a list it is
	// written above the item's "-" (yaml.v3 puts it on the first key).
	head := joinComments(doc.HeadComment, n.HeadComment)
	if n.Kind == yaml.MappingNode && len(n.Content) > 0 {
		head = joinComments(head, n.Content[0].HeadComment)
		n.Content[0].HeadComment = ""
	}
	n.HeadComment = head
	return n, nil
}

// joinComments joins non-empty comment blocks with newlines.
func joinComments(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "\n")
}
