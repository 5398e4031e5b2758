package election_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/incumbent-io/incumbent/election"
	"github.com/incumbent-io/incumbent/store/memory"
)

func TestConfigValidate(t *testing.T) {
	s := memory.New("x")
	ok := election.Config{Store: s, Identity: "a"}
	cases := []struct {
		name string
		edit func(*election.Config)
		want string // substring of the error; empty: valid
	}{
		{"defaults", func(*election.Config) {}, ""},
		{"short profile", func(c *election.Config) {
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod, c.Grace = 3*time.Second, 2*time.Second, 500*time.Millisecond, 500*time.Millisecond
		}, ""},
		{"no store", func(c *election.Config) { c.Store = nil }, "Store is required"},
		{"no identity", func(c *election.Config) { c.Identity = "" }, "Identity must not be empty"},
		{"long identity", func(c *election.Config) { c.Identity = strings.Repeat("x", 254) }, "at most 253"},
		{"negative lease", func(c *election.Config) { c.LeaseDuration = -time.Second }, "LeaseDuration must be positive"},
		{"negative renew", func(c *election.Config) { c.RenewDeadline = -time.Second }, "RenewDeadline must be positive"},
		{"negative retry", func(c *election.Config) { c.RetryPeriod = -time.Second }, "RetryPeriod must be positive"},
		{"negative grace", func(c *election.Config) { c.Grace = -time.Second }, "Grace must be positive"},
		{"drift too large", func(c *election.Config) { c.Drift = 0.6 }, "Drift must be in [0, 0.5)"},
		{"negative drift", func(c *election.Config) { c.Drift = -0.1 }, "Drift must be in"},
		{"renew interval at its limit", func(c *election.Config) { c.RenewInterval = 8 * time.Second }, ""},
		{"renew interval leaves no retry", func(c *election.Config) { c.RenewInterval = 8*time.Second + time.Millisecond }, "RenewInterval (8.001s) plus RetryPeriod (2s) must be at most RenewDeadline (10s)"},
		{"negative renew interval", func(c *election.Config) { c.RenewInterval = -time.Second }, "RenewInterval must be positive"},
		{"retry too close to renew", func(c *election.Config) { c.RetryPeriod = 6 * time.Second }, "RetryPeriod (6s) must be at most half of RenewDeadline (10s)"},
		{"client-go default with our grace", func(c *election.Config) { c.Grace = 5 * time.Second }, "(RenewDeadline + Grace)*(1+Drift) (15.15s) must be less than LeaseDuration*(1-Drift) (14.85s)"},
		{"renew equals lease", func(c *election.Config) { c.RenewDeadline = 15 * time.Second }, "must be less than LeaseDuration"},
		{"drift eats the margin", func(c *election.Config) { c.Drift = 0.05 }, "must be less than LeaseDuration"},
		{"grace zero is default, tiny grace ok", func(c *election.Config) { c.Grace = time.Millisecond }, ""},
		// The grace runs on the leader's clock too: (10s+4.72s)*1.01 =
		// 14.867s is not below 15s*0.99 = 14.85s, although 10s*1.01+4.72s is.
		{"grace is scaled by drift", func(c *election.Config) { c.Grace = 4720 * time.Millisecond }, "must be less than LeaseDuration*(1-Drift) (14.85s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if _, err := election.New(c); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, election.ErrInvalidConfig) {
				t.Fatalf("error %v; want ErrInvalidConfig mentioning %q", err, tc.want)
			}
			if _, err := election.New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}
