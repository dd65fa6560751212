package observability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lookPath returns the path of a binary that the test needs, or skips the
// test naming it.
func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("no %s binary on PATH (on Debian: apt-get install -y prometheus)", name)
	}
	return p
}

func TestPromtoolChecksTheRulesAndTheConfig(t *testing.T) {
	promtool := lookPath(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "rules/recording.yml", "rules/alerts.yml"}, {"check", "config", "prometheus.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		assert.Contains(t, string(out), "SUCCESS")
	}
}

// TestStuckSagaAlertFires runs a real Prometheus, with the shipped config
// and rules at 1 s intervals, against a shop whose inventory fails every
// release, sends it a declined checkout, whose compensation gives up, and
// waits for OtelpatternsSagaStuck to fire through Prometheus's HTTP API.
func TestStuckSagaAlertFires(t *testing.T) {
	prometheus := lookPath(t, "prometheus")
	if testing.Short() {
		t.Skip("starts Prometheus and the shop")
	}
	started := time.Now()
	dir := t.TempDir()

	// The shop, built from this module, serving its metrics on a free port.
	shopBin := filepath.Join(dir, "shop")
	args := []string{"build", "-o", shopBin}
	if raceEnabled {
		args = append(args, "-race") // reuses the packages built for the other tests
	}
	build := exec.Command("go", append(args, "../shop")...) // go test puts its go first on PATH
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ../shop:\n%s", out)
	t.Logf("shop built in %v", time.Since(started).Round(time.Millisecond))

	metricsPort := freePort(t)
	shop := startProcess(t, shopBin, []string{"OTEL_METRICS_EXPORTER=prometheus", "OTEL_TRACES_EXPORTER=none",
		"OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1", "OTEL_EXPORTER_PROMETHEUS_PORT=" + strconv.Itoa(metricsPort)},
		"-serve", "-decline", "-release-fails", "-journal", filepath.Join(dir, "journal"),
		"-gateway", "127.0.0.1:0", "-users", "127.0.0.1:0", "-catalog", "127.0.0.1:0",
		"-inventory", "127.0.0.1:0", "-payments", "127.0.0.1:0", "-orders", "127.0.0.1:0")
	gateway := shop.waitFor(t, regexp.MustCompile(`(?m)^gateway +(http://\S+)$`), 30*time.Second)

	// Prometheus, with the shipped config at 1 s intervals, scraping it.
	config, err := os.ReadFile("prometheus.yml")
	require.NoError(t, err)
	rules, err := filepath.Abs("rules")
	require.NoError(t, err)
	promPort := freePort(t)
	cfg := string(config)
	for old, repl := range map[string]string{
		"scrape_interval: 5s":     "scrape_interval: 1s",
		"evaluation_interval: 5s": "evaluation_interval: 1s",
		`"localhost:9464"`:        fmt.Sprintf(`"127.0.0.1:%d"`, metricsPort),
		`"localhost:9465"`:        fmt.Sprintf(`"127.0.0.1:%d"`, freePort(t)), // no bank: its target is down
		"- rules/":                "- " + rules + "/",
	} {
		require.Equal(t, map[bool]int{true: 2, false: 1}[old == "- rules/"], strings.Count(cfg, old), "prometheus.yml: %q", old)
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	prom := startProcess(t, prometheus, nil, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort))
	api := fmt.Sprintf("http://127.0.0.1:%d", promPort)
	poll(t, prom, 30*time.Second, "Prometheus ready", func() bool {
		resp, err := http.Get(api + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// The shop is scraped, and nothing is stuck yet: no alert.
	poll(t, prom, 30*time.Second, `up{job="shop"} == 1`, func() bool {
		return len(query(t, api, `up{job="shop"} == 1`)) == 1
	})
	require.Empty(t, firing(t, api, "OtelpatternsSagaStuck"), "an alert before any saga is stuck")

	// A declined checkout whose reservation cannot be released is stuck.
	resp, err := http.Post(gateway+"/checkout", "application/json",
		strings.NewReader(`{"order":"o-stuck","user":"u-1","items":[{"sku":"book","qty":1}]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `"outcome":"stuck"`)
	stuckAt := time.Now()

	var alert map[string]any
	poll(t, prom, 40*time.Second, "OtelpatternsSagaStuck firing", func() bool {
		alerts := firing(t, api, "OtelpatternsSagaStuck")
		if len(alerts) > 0 {
			alert = alerts[0]
		}
		return alert != nil
	})
	labels := alert["labels"].(map[string]any)
	assert.Equal(t, "checkout", labels["otelpatterns_saga_name"])
	assert.Equal(t, "shop", labels["job"])
	assert.Equal(t, "page", labels["severity"])
	t.Logf("alert fired %v after the saga was stuck, %v after the test began",
		time.Since(stuckAt).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))

	// Every rule evaluates without an error against the shop's metrics.
	var rulesResp struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	getJSON(t, api+"/api/v1/rules", &rulesResp)
	n := 0
	for _, g := range rulesResp.Data.Groups {
		for _, r := range g.Rules {
			n++
			assert.Equal(t, "ok", r.Health, "rule %s: %s", r.Name, r.LastError)
		}
	}
	assert.Equal(t, 16, n, "the rules of recording.yml and alerts.yml")
}

// firing returns the alerts named name that Prometheus says are firing.
func firing(t *testing.T, api, name string) []map[string]any {
	var resp struct {
		Data struct{ Alerts []map[string]any }
	}
	getJSON(t, api+"/api/v1/alerts", &resp)
	var out []map[string]any
	for _, a := range resp.Data.Alerts {
		if labels, _ := a["labels"].(map[string]any); labels["alertname"] == name && a["state"] == "firing" {
			out = append(out, a)
		}
	}
	return out
}

// query returns the instant vector of expr.
func query(t *testing.T, api, expr string) []any {
	var resp struct {
		Data struct{ Result []any }
	}
	getJSON(t, api+"/api/v1/query?query="+url.QueryEscape(expr), &resp)
	return resp.Data.Result
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// poll calls cond every 200 ms until it holds, and fails the test after
// within, with what p has printed.
func poll(t *testing.T, p *process, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v; %s printed:\n%s", what, within, filepath.Base(p.cmd.Path), p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// process is a program the test started; it is stopped at the test's end.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startProcess(t *testing.T, path string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(path, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	require.NoError(t, p.cmd.Start())
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() { _ = p.cmd.Wait(); _ = w.Close() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor returns the first group of re in what p prints.
func (p *process) waitFor(t *testing.T, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		if m := re.FindStringSubmatch(p.output()); m != nil {
			return m[1]
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", p.cmd.Path, p.output())
		case <-ctx.Done():
			t.Fatalf("%s printed no %s in %v:\n%s", p.cmd.Path, re, within, p.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
