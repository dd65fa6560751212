package sampling

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Threshold is a rejection threshold of consistent probability sampling: a
// span whose randomness R, a 56-bit number, is below it is dropped, and one
// at or above it is kept. Threshold 0 keeps everything; Never keeps
// nothing. A span kept at threshold T stands for 2^56 / (2^56 - T) spans
// (its adjusted count).
type Threshold uint64

const (
	// MaxRandomness is one more than the largest randomness, 2^56.
	MaxRandomness = 1 << 56
	// AlwaysThreshold keeps every span.
	AlwaysThreshold Threshold = 0
	// Never is no threshold at all: the span is dropped whatever its
	// randomness.
	Never Threshold = math.MaxUint64
)

// ProbabilityThreshold returns the threshold that keeps a share p of
// spans, rounded to the nearest representable one. It fails for a p that
// is not in [2^-56, 1]; use Never for 0.
func ProbabilityThreshold(p float64) (Threshold, error) {
	if !(p >= 1.0/MaxRandomness && p <= 1) { // NaN fails too
		return Never, fmt.Errorf("sampling: the probability %v is not in [2^-56, 1]: give one in that range, or use AlwaysOff for 0", p)
	}
	kept := uint64(math.Round(p * MaxRandomness))
	return Threshold(MaxRandomness - min(kept, MaxRandomness)), nil
}

// Probability is the share of spans that t keeps.
func (t Threshold) Probability() float64 {
	if t == Never {
		return 0
	}
	return float64(MaxRandomness-uint64(t)) / MaxRandomness
}

// Keeps reports whether a span of randomness r is kept at t.
func (t Threshold) Keeps(r uint64) bool { return t != Never && r >= uint64(t) }

// String encodes t as the tracestate's th value: up to 14 lowercase hex
// digits, trailing zeros removed, "0" for AlwaysThreshold.
func (t Threshold) String() string {
	if t == Never {
		return "never"
	}
	return string(t.appendTH(nil))
}

func (t Threshold) appendTH(b []byte) []byte {
	if t == 0 {
		return append(b, '0')
	}
	s := strconv.FormatUint(uint64(t), 16)
	b = append(b, "00000000000000"[:14-len(s)]...)
	return append(b, strings.TrimRight(s, "0")...)
}

// parseTH reads a th value: 1 to 14 lowercase hex digits, the rest of the
// 14 zeros.
func parseTH(s string) (Threshold, bool) {
	if len(s) == 0 || len(s) > 14 {
		return Never, false
	}
	v, ok := parseHex(s)
	return Threshold(v << (4 * (14 - len(s)))), ok
}

// parseRV reads an rv value: exactly 14 lowercase hex digits.
func parseRV(s string) (uint64, bool) {
	if len(s) != 14 {
		return 0, false
	}
	return parseHex(s)
}

// parseHex reads up to 16 lowercase hex digits, as the tracestate writes
// them (no upper case, no prefix).
func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// Randomness is the 56 random bits a trace's sampling decisions share:
// its tracestate's rv if it has one, else the trace ID's last 7 bytes.
func Randomness(id trace.TraceID, ts trace.TraceState) uint64 {
	if ot := ts.Get(otKey); ot != "" {
		if rv, ok := parseRV(subValue(ot, "rv")); ok {
			return rv
		}
	}
	var r uint64
	for _, b := range id[9:] {
		r = r<<8 | uint64(b)
	}
	return r
}

// otKey is OpenTelemetry's own tracestate entry.
const otKey = "ot"

// subValue returns the value of key in an ot entry ("th:8;rv:..."), or "".
func subValue(ot, key string) string {
	for ot != "" {
		var kv string
		kv, ot, _ = strings.Cut(ot, ";")
		if k, v, ok := strings.Cut(kv, ":"); ok && k == key {
			return v
		}
	}
	return ""
}

// withTH returns ts with the ot entry's th set to t, or removed when t is
// Never; the entry's other values are kept. A tracestate that cannot take
// the change is returned as it was.
func withTH(ts trace.TraceState, t Threshold) trace.TraceState {
	old := ts.Get(otKey)
	var b []byte
	if t != Never {
		b = append(b, "th:"...)
		b = t.appendTH(b)
	}
	for rest := old; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, ";")
		if kv == "" || strings.HasPrefix(kv, "th:") {
			continue
		}
		if len(b) > 0 {
			b = append(b, ';')
		}
		b = append(b, kv...)
	}
	if len(b) == 0 {
		return ts.Delete(otKey)
	}
	next, err := ts.Insert(otKey, string(b))
	if err != nil {
		return ts
	}
	return next
}
