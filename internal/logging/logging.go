// Package logging builds incumbent's one logger: a log/slog logger that
// writes JSON or text, with durations as Go duration strings ("15s",
// "1.5s") in both formats, and klog — through which client-go logs —
// routed into the same handler, so that in JSON mode every line on stderr
// is JSON.
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// Formats.
const (
	JSON = "json"
	Text = "text"
)

// Config says how a logger writes. Its fields mirror the --log-format and
// --log-level flags, which its errors name.
type Config struct {
	// Format is JSON or Text. Empty: JSON when InPod, else Text.
	Format string
	// Level is debug, info, warn or error (as slog.Level parses it).
	// Empty: info.
	Level string
	// InPod says the process runs in a Kubernetes pod, where logs are
	// collected and JSON is the default.
	InPod bool
}

// IsJSON reports whether c selects JSON, after defaults.
func (c Config) IsJSON() bool { return c.format() == JSON }

func (c Config) format() string {
	switch {
	case c.Format != "":
		return c.Format
	case c.InPod:
		return JSON
	}
	return Text
}

// New builds a logger on w. It does not route klog; see RouteKlog.
func New(w io.Writer, c Config) (*slog.Logger, error) {
	h, err := NewHandler(w, c)
	if err != nil {
		return nil, err
	}
	return slog.New(h), nil
}

// NewHandler builds the handler of New.
func NewHandler(w io.Writer, c Config) (slog.Handler, error) {
	lv := slog.LevelInfo
	if c.Level != "" {
		if err := lv.UnmarshalText([]byte(c.Level)); err != nil {
			return nil, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", c.Level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: ReplaceAttr}
	switch c.format() {
	case JSON:
		return slog.NewJSONHandler(w, opts), nil
	case Text:
		return slog.NewTextHandler(w, opts), nil
	}
	return nil, fmt.Errorf("invalid --log-format %q: want json or text", c.Format)
}

// ReplaceAttr is the slog.HandlerOptions.ReplaceAttr of New's handlers: a
// time.Duration value, at any depth of groups, becomes its String form
// ("15s") instead of a count of nanoseconds (which the JSON handler would
// write).
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
