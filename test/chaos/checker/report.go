package checker

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// NoFault is the kind findings are attributed to when no fault was in
// progress.
const NoFault = "none"

// Overlap is one pair of terms whose acting intervals intersect.
type Overlap struct {
	Older, Newer Term
	// For is how long both acted at once.
	For time.Duration
	// Fault is the kind of fault in progress when the newer term began.
	Fault string
}

// KindReport sums up the faults of one kind and what happened during them.
type KindReport struct {
	Kind   string
	Faults int
	// Moved counts the faults after which a new term began before the
	// fault settled.
	Moved    int
	Overlaps int
	// Stale writes: attempted = rejected + accepted.
	StaleAttempted, StaleRejected, StaleAccepted int
	OutOfOrder                                   int
	// Unavailability holds, per fault, the time from the injection to the
	// first term that began after it, or zero when the term in office at
	// the injection was still in office when the fault settled.
	Unavailability []time.Duration
}

// P50 is the median unavailability (nearest rank), zero without samples.
func (k KindReport) P50() time.Duration { return percentile(k.Unavailability, 0.5) }

// Max is the largest unavailability, zero without samples.
func (k KindReport) Max() time.Duration { return percentile(k.Unavailability, 1) }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// Report is everything the checker found.
type Report struct {
	Fencing bool
	// APIServer: the resource was the Kubernetes API server (Fencing: its
	// fence policy was installed); RefusedCurrent counts the writes it
	// refused to a term not known to be stale.
	APIServer      bool
	RefusedCurrent int
	Terms          int
	// Ended counts the terms that said they ended; the others were killed
	// (or are still in office).
	Ended  int
	Writes int
	// Kinds has one entry per fault kind of Options.Kinds, then per other
	// kind injected, in the order first injected, then NoFault if anything
	// was found outside every fault.
	Kinds []KindReport
	// Total sums every kind (its Unavailability is empty).
	Total      KindReport
	Overlaps   []Overlap
	Stale      []StaleWrite
	OutOfOrder []Term
	// Protocol lists requests that broke the workload's protocol.
	Protocol []string
	// Unsettled counts faults that never settled.
	Unsettled int
}

// Kind returns the report of one kind (zero counts if it never occurred).
func (r Report) Kind(kind string) KindReport {
	for _, k := range r.Kinds {
		if k.Kind == kind {
			return k
		}
	}
	return KindReport{Kind: kind}
}

// Report computes the findings so far. Terms still in office count up to
// their last write.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Report{Fencing: c.fencing, APIServer: c.apiServer, RefusedCurrent: c.refusedCurrent,
		Terms: len(c.terms), Writes: c.writes, Protocol: slices.Clone(c.protocol)}
	kinds := map[string]*KindReport{}
	var order []string
	kind := func(name string) *KindReport {
		k := kinds[name]
		if k == nil {
			k = &KindReport{Kind: name}
			kinds[name] = k
			order = append(order, name)
		}
		return k
	}
	for _, name := range c.kinds {
		kind(name)
	}
	for _, f := range c.faults {
		k := kind(f.Kind)
		k.Faults++
		if f.settled.IsZero() {
			r.Unsettled++
			continue
		}
		k.Unavailability = append(k.Unavailability, c.unavailability(f))
		if c.beganWithin(f.Start, f.settled) {
			k.Moved++
		}
	}

	for _, t := range c.terms {
		if t.Ended() {
			r.Ended++
		}
	}
	terms := slices.Clone(c.terms)
	slices.SortStableFunc(terms, func(a, b *Term) int { return a.Begin.Compare(b.Begin) })
	for i, a := range terms {
		for _, b := range terms[i+1:] {
			if a.Token == b.Token || !a.Until().After(b.Begin) {
				continue
			}
			end := a.Until()
			if b.Until().Before(end) {
				end = b.Until()
			}
			o := Overlap{Older: *a, Newer: *b, For: end.Sub(b.Begin), Fault: c.faultAt(b.Begin)}
			r.Overlaps = append(r.Overlaps, o)
			kind(o.Fault).Overlaps++
		}
	}
	for _, s := range c.stale {
		k := kind(c.faultAt(s.At))
		k.StaleAttempted++
		if s.Accepted {
			k.StaleAccepted++
		} else {
			k.StaleRejected++
		}
	}
	r.Stale = slices.Clone(c.stale)
	for _, w := range c.accepted {
		if newer := c.newerBegunBelow(w.token, w.rv); newer > 0 {
			k := kind(c.faultAt(w.at))
			k.StaleAttempted++
			k.StaleAccepted++
			r.Stale = append(r.Stale, StaleWrite{At: w.at, Token: w.token, Identity: w.identity, Highest: newer, Accepted: true})
		}
	}
	for _, t := range c.outOfOrder {
		kind(c.faultAt(t.Begin)).OutOfOrder++
	}
	r.OutOfOrder = slices.Clone(c.outOfOrder)

	// NoFault last.
	if i := slices.Index(order, NoFault); i >= 0 {
		order = append(slices.Delete(order, i, i+1), NoFault)
	}
	r.Total.Kind = "total"
	for _, name := range order {
		k := *kinds[name]
		r.Kinds = append(r.Kinds, k)
		r.Total.Faults += k.Faults
		r.Total.Moved += k.Moved
		r.Total.Overlaps += k.Overlaps
		r.Total.StaleAttempted += k.StaleAttempted
		r.Total.StaleRejected += k.StaleRejected
		r.Total.StaleAccepted += k.StaleAccepted
		r.Total.OutOfOrder += k.OutOfOrder
	}
	return r
}

// newerBegunBelow returns the highest token above token and below rv that
// has begun, or 0; c.mu must be held.
func (c *Checker) newerBegunBelow(token, rv int64) int64 {
	var newer int64
	for _, t := range c.terms {
		if t.Token > token && t.Token < rv {
			newer = max(newer, t.Token)
		}
	}
	return newer
}

// faultAt is the kind of the fault in progress at t; c.mu must be held.
func (c *Checker) faultAt(t time.Time) string {
	for _, f := range c.faults {
		if !t.Before(f.Start) && (f.settled.IsZero() || !t.After(f.settled)) {
			return f.Kind
		}
	}
	return NoFault
}

// beganWithin reports whether a term began in (from, to]; c.mu must be
// held.
func (c *Checker) beganWithin(from, to time.Time) bool {
	for _, t := range c.terms {
		if t.Begin.After(from) && !t.Begin.After(to) {
			return true
		}
	}
	return false
}

// unavailability of a settled fault: from its start to the first term that
// began after it, or zero if none began before it settled; c.mu must be
// held.
func (c *Checker) unavailability(f *Fault) time.Duration {
	var first time.Time
	for _, t := range c.terms {
		if t.Begin.After(f.Start) && !t.Begin.After(f.settled) && (first.IsZero() || t.Begin.Before(first)) {
			first = t.Begin
		}
	}
	if first.IsZero() {
		return 0
	}
	return first.Sub(f.Start)
}

// Markdown renders the report as a table per fault kind and the totals,
// followed by the details of every finding.
func (r Report) Markdown() string {
	var b strings.Builder
	fencing := "on"
	if !r.Fencing {
		fencing = "off"
	}
	if r.APIServer {
		policy := "installed"
		if !r.Fencing {
			policy = "not installed"
		}
		fmt.Fprintf(&b, "Writes to the Kubernetes API server (ConfigMap updates with pod-bound tokens), the fence policy %s; "+
			"%d terms (%d said they ended, %d were killed), %d writes; %d writes of a term not known to be stale refused.\n\n",
			policy, r.Terms, r.Ended, r.Terms-r.Ended, r.Writes, r.RefusedCurrent)
	} else {
		fmt.Fprintf(&b, "Fencing %s; %d terms (%d said they ended, %d were killed), %d writes.\n\n", fencing, r.Terms, r.Ended, r.Terms-r.Ended, r.Writes)
	}
	b.WriteString("| fault | count | leadership moved | overlapping terms | stale writes attempted | rejected | accepted | tokens out of order | unavailability p50 | max |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(k KindReport, p50, mx string) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", k.Kind, k.Faults, k.Moved, k.Overlaps,
			k.StaleAttempted, k.StaleRejected, k.StaleAccepted, k.OutOfOrder, p50, mx)
	}
	for _, k := range r.Kinds {
		if k.Faults == 0 {
			row(k, "–", "–")
			continue
		}
		row(k, ms(k.P50()), ms(k.Max()))
	}
	row(r.Total, "", "")
	if r.Unsettled > 0 {
		fmt.Fprintf(&b, "\n%d fault(s) never settled: leadership did not come back within the harness's bound.\n", r.Unsettled)
	}
	if len(r.Overlaps) > 0 {
		b.WriteString("\nOverlapping terms:\n\n")
		for _, o := range r.Overlaps {
			fmt.Fprintf(&b, "- during %s: %s (token %d, %s–%s) and %s (token %d, from %s) acted together for %v\n",
				o.Fault, o.Older.Identity, o.Older.Token, stamp(o.Older.Begin), stamp(o.Older.Until()),
				o.Newer.Identity, o.Newer.Token, stamp(o.Newer.Begin), o.For.Round(time.Millisecond))
		}
	}
	if len(r.OutOfOrder) > 0 {
		b.WriteString("\nTokens out of order:\n\n")
		for _, t := range r.OutOfOrder {
			fmt.Fprintf(&b, "- %s: %s began with token %d, not above every token begun before\n", stamp(t.Begin), t.Identity, t.Token)
		}
	}
	if len(r.Protocol) > 0 {
		b.WriteString("\nProtocol errors:\n\n")
		for _, p := range r.Protocol {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return b.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}
