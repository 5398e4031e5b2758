package election_test

import (
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"log/slog"
	"strings"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func isForbidden(err error) bool { return apierrors.IsForbidden(err) }

// count returns how many captured messages contain substr.
func (l *logCapture) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range *l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}
