package inject

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Input is one source of YAML: a file, or standard input.
type Input struct {
	// Name names the source in errors ("app.yaml", "stdin").
	Name string
	// Data is its content: a YAML (or JSON) stream of Kubernetes objects.
	Data []byte
}

// document is one document of a stream: an object (or a List of them), or
// a document holding only a comment (Helm writes "# Source: ..." above
// every template's output, even an empty one).
type document struct {
	node    *yaml.Node // a DocumentNode, nil for a comment alone
	comment string
	source  string // the Input's name
	// compact: the input writes a list at the indentation of its key
	// (kustomize does), and the output keeps that.
	compact bool
}

// parseStream splits an input into its documents. Empty documents are
// dropped; a document that holds only comments is kept as they are.
func parseStream(in Input) ([]*document, error) {
	compact := compactLists(in.Data)
	dec := yaml.NewDecoder(bytes.NewReader(in.Data))
	var docs []*document
	for i := 1; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d is not valid YAML: %w", in.Name, i, err)
		}
		if len(n.Content) != 1 {
			continue
		}
		c := n.Content[0]
		if c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == "" {
			if text := joinComments(n.HeadComment, c.HeadComment, c.LineComment, c.FootComment, n.FootComment); text != "" {
				docs = append(docs, &document{comment: text, source: in.Name, compact: compact})
			}
			continue
		}
		if c.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: document %d is not a Kubernetes object but a YAML %s", in.Name, c.Line, i, kindName(c.Kind))
		}
		if c.Style&yaml.FlowStyle != 0 {
			blockStyle(c) // JSON in, YAML out
		}
		docs = append(docs, &document{node: &n, source: in.Name, compact: compact})
	}
}

// compactLists reports whether a YAML text writes most of its block lists
// at the indentation of their key ("key:\n- a") rather than deeper.
func compactLists(data []byte) bool {
	lines := strings.Split(string(data), "\n")
	compact, indented := 0, 0
	for i := 0; i+1 < len(lines); i++ {
		key := strings.TrimRight(lines[i], " ")
		if !strings.HasSuffix(key, ":") || strings.HasPrefix(strings.TrimSpace(key), "#") {
			continue
		}
		keyIndent := len(key) - len(strings.TrimLeft(key, " "))
		item := strings.TrimLeft(lines[i+1], " ")
		if !strings.HasPrefix(item, "- ") && item != "-" {
			continue
		}
		if itemIndent := len(lines[i+1]) - len(item); itemIndent == keyIndent {
			compact++
		} else {
			indented++
		}
	}
	return compact > indented
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "value"
}

// blockStyle turns a flow (JSON) node into block style, and lets the
// encoder quote only the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style &^= yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// writeStream writes documents as one YAML stream, separated by "---".
func writeStream(w io.Writer, docs []*document) error {
	var b bytes.Buffer
	for i, d := range docs {
		if i > 0 {
			b.WriteString("---\n")
		}
		if d.node == nil {
			for _, l := range strings.Split(d.comment, "\n") {
				b.WriteString(l + "\n")
			}
			if i == len(docs)-1 {
				// Ended, so that it is read as a document of its own again,
				// not as the comment below the document before it.
				b.WriteString("---\n")
			}
			continue
		}
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if d.compact {
			enc.CompactSeqIndent()
		}
		if err := enc.Encode(d.node); err != nil {
			return fmt.Errorf("write YAML: %w", err)
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("write YAML: %w", err)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// newDocument wraps an object node in a document.
func newDocument(obj *yaml.Node) *document {
	return &document{node: &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{obj}}}
}
