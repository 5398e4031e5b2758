// Package healthcheck makes the workload health checks of `incumbent run
// --health-url` and `--health-exec`, as election.Health check functions.
// Every failure names its cause: the address that refused a connection,
// the status of an answer that was not 2xx, the exit code (and the end of
// the output) of a command that failed, or why a command could not start.
package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// outputTail is how much of a failed command's output its error quotes.
const outputTail = 200

// HTTP returns a check that sends GET to rawURL and passes on a 2xx answer.
// Redirects are not followed (a 3xx fails, naming where it points).
func HTTP(rawURL string) (func(ctx context.Context) error, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid health check URL %q: want http://HOST[:PORT]/PATH or https://…", rawURL)
	}
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, unwrapURLError(err))
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, outputTail))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			msg := fmt.Sprintf("GET %s: %s", u, resp.Status)
			if loc := resp.Header.Get("Location"); loc != "" {
				msg += " to " + loc
			}
			if b := strings.TrimSpace(string(body)); b != "" {
				msg += ": " + b
			}
			return errors.New(msg)
		}
		return nil
	}, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Exec returns a check that runs argv (no shell) and passes when it exits
// 0. On a timeout its whole process group is killed. The program is looked
// up in PATH once, now.
func Exec(argv []string) (func(ctx context.Context) error, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("the health check command is empty")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("health check command %q: %w", argv[0], err)
	}
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, path, argv[1:]...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", argv[0], ctx.Err())
		case errors.As(err, &exit):
			msg := fmt.Sprintf("%s: %v", argv[0], exit)
			if tail := tailOf(out.Bytes()); tail != "" {
				msg += ": " + tail
			}
			return errors.New(msg)
		}
		return fmt.Errorf("%s could not start: %w", argv[0], err)
	}, nil
}

func tailOf(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > outputTail {
		s = "…" + s[len(s)-outputTail:]
	}
	return strings.Join(strings.Fields(s), " ")
}

// Split splits a command line into arguments the way a POSIX shell splits
// words, without running one: blanks separate words; single quotes keep
// everything literally; double quotes keep blanks and honour \" and \\; a
// backslash outside quotes escapes the next character. Use `sh -c '…'` for
// anything a shell should do.
func Split(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quote, escaped := false, rune(0), false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	switch {
	case quote != 0:
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, line)
	case escaped:
		return nil, fmt.Errorf("trailing backslash in %q", line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}
