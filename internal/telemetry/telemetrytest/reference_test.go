package telemetrytest

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sample = `# x

## Telemetry reference

| package | kind | name | unit | description |
|---|---|---|---|---|
| ` + "`pool`" + ` | span | ` + "`pool.task`" + ` | | one task |
| pool | metric | ` + "`otelpatterns.pool.task.duration`" + ` | ` + "`s`" + ` | duration |
| concurrency | span | ` + "`send {channel}`" + ` | | |

## Next

| pool | span | not.in.section | | |
`

func TestParse(t *testing.T) {
	entries, err := Parse(bufio.NewScanner(strings.NewReader(sample)))
	require.NoError(t, err)
	assert.Equal(t, []Entry{
		{"pool", Span, "pool.task", ""},
		{"pool", Metric, "otelpatterns.pool.task.duration", "s"},
		{"concurrency", Span, "send {channel}", ""},
	}, entries)

	_, err = Parse(bufio.NewScanner(strings.NewReader("## Telemetry reference\n| pool | spam | x | |\n")))
	assert.ErrorContains(t, err, `kind "spam"`)
}

func TestMatches(t *testing.T) {
	send := Entry{"concurrency", Span, "send {channel}", ""}
	assert.True(t, matches(send, "send orders"))
	assert.False(t, matches(send, "send "))
	assert.False(t, matches(send, "receive orders"))
	dur := Entry{"pool", Metric, "otelpatterns.pool.task.duration", "s"}
	assert.True(t, matches(dur, "otelpatterns.pool.task.duration s"))
	assert.False(t, matches(dur, "otelpatterns.pool.task.duration ms"), "the unit is part of the contract")
}

// recordingTB records failures instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Helper() {}

func TestCheckReportsBothDirections(t *testing.T) {
	// errs is listed in the real README with error.type among others.
	listed := Reference(t, "errs")
	require.NotEmpty(t, listed)

	all := Emitted{}
	for _, e := range listed {
		name := e.Name
		if e.Kind == Metric {
			name += " " + e.Unit
		}
		if all[e.Kind] == nil {
			all[e.Kind] = map[string]bool{}
		}
		all[e.Kind][name] = true
	}
	ok := &recordingTB{TB: t}
	Check(ok, "errs", all)
	assert.Empty(t, ok.errors, "emitting exactly what is listed passes")

	all[SpanAttribute]["errs.undocumented"] = true
	delete(all[SpanAttribute], "error.type")
	bad := &recordingTB{TB: t}
	Check(bad, "errs", all)
	require.Len(t, bad.errors, 2)
	assert.Contains(t, strings.Join(bad.errors, "\n"), `"errs.undocumented", which README.md's Telemetry reference does not list`)
	assert.Contains(t, strings.Join(bad.errors, "\n"), `"error.type", which the tests never saw emitted`)
}
