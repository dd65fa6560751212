package observability

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prometheusNames reads the root README's telemetry reference and returns
// the names under which Prometheus stores the library's metrics and their
// attributes: dots become underscores, a unit of seconds or bytes adds
// _seconds or _bytes, a counter adds _total, a histogram is its _bucket,
// _sum and _count series, and a {curly} unit adds nothing.
func prometheusNames(t *testing.T) (metrics, labels map[string]bool) {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	row := regexp.MustCompile("^\\| `[^`]+` \\| (metric|metric attribute) \\| `([^`]+)` \\| (`([^`]*)`)? *\\| ([a-z -]*)")
	metrics, labels = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := strings.ReplaceAll(m[2], ".", "_")
		if m[1] == "metric attribute" {
			labels[name] = true
			continue
		}
		switch m[4] {
		case "s":
			name += "_seconds"
		case "By":
			name += "_bytes"
		}
		switch kind := strings.TrimSpace(m[5]); kind {
		case "counter":
			metrics[name+"_total"] = true
		case "histogram":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				metrics[name+s] = true
			}
		default: // up-down counters and gauges
			metrics[name] = true
		}
	}
	require.Contains(t, metrics, "otelpatterns_saga_stuck", "the README's table was not read")
	return metrics, labels
}

// TestRulesNameLibraryMetrics checks that every otelpatterns_ name in the
// rules is a metric or an attribute of the telemetry reference, so that a
// misspelt rule cannot pass for one that never matches, and that the
// rules cover what they are for.
func TestRulesNameLibraryMetrics(t *testing.T) {
	metrics, labels := prometheusNames(t)
	used := map[string]bool{}
	ident := regexp.MustCompile(`\botelpatterns_[a-z0-9_]+`)
	for _, file := range []string{"rules/recording.yml", "rules/alerts.yml"} {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		for _, name := range ident.FindAllString(string(data), -1) {
			assert.True(t, metrics[name] || labels[name], "%s: %s is neither a metric nor an attribute of the telemetry reference", file, name)
			used[name] = true
		}
	}
	for _, want := range []string{
		"otelpatterns_pool_workers_busy", "otelpatterns_pool_queue_length", "otelpatterns_pool_task_queue_wait_seconds_bucket",
		"otelpatterns_retry_budget_rejections_total", "otelpatterns_breaker_state", "otelpatterns_saga_stuck",
		"otelpatterns_twophase_in_doubt", "otelpatterns_journal_append_duration_seconds_bucket",
	} {
		assert.True(t, used[want], "no rule reads %s", want)
	}
}
