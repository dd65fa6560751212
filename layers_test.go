package otelpatterns_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const module = "github.com/otelpatterns/otelpatterns"

// floors is DESIGN.md's layering: a package imports the module's packages
// only from floors below its own. A new package must be placed here.
var floors = map[string]int{
	"errs":                             1,
	"internal/telemetry":               2,
	"internal/telemetry/telemetrytest": 2, // imported by tests only
	"internal/ordered":                 2,
	"internal/owned":                   4, // on journal, whose leases it keeps
	"internal/retryhook":               2, // set by retry, called by the runners
	"internal/workload":                2, // imported by benchmarks only
	"retry/breaker":                    3,
	"retry":                            4, // on its breaker
	"functional":                       3,
	"concurrency":                      3,
	"concurrency/pipeline":             3,
	"concurrency/singleflight":         3,
	"pool":                             3,
	"journal":                          3,
	"sampling":                         3, // the one package on the SDK: its samplers are SDK types
	"journal/journaltest":              4, // above journal, which it tests
	"saga":                             5,
	"twophase":                         5,
	"twophase/twophasehttp":            6,
	"":                                 6, // the root package: docs and Version
}

// errsMayImport is all that errs, the floor everything stands on, may import
// besides the standard library: the OpenTelemetry API's smallest parts.
var errsMayImport = []string{
	"go.opentelemetry.io/otel/attribute",
	"go.opentelemetry.io/otel/codes",
	"go.opentelemetry.io/otel/semconv/",
	"go.opentelemetry.io/otel/trace",
}

// notInLibrary may be used by tests, examples and benchmarks, never by the
// library's own code.
var notInLibrary = []string{
	"go.opentelemetry.io/otel/sdk",
	"go.opentelemetry.io/otel/exporters",
	"github.com/stretchr/testify",
	"go.uber.org/goleak",
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps=false", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func TestImportsGoOnlyDownward(t *testing.T) {
	for _, p := range listPackages(t) {
		name, _ := rel(p.ImportPath)
		floor, known := floors[name]
		if !known {
			t.Errorf("package %q has no floor: place it in DESIGN.md's layering and in floors", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if dep, ok := rel(imp); ok && floors[dep] >= floor {
				t.Errorf("%s (floor %d) imports %s (floor %d): imports must go down", p.ImportPath, floor, imp, floors[dep])
			}
		}
	}
}

func TestErrsImportsOnlyTheAPI(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/errs" {
			continue
		}
		for _, imp := range p.Imports {
			if !strings.Contains(imp, ".") {
				continue // standard library
			}
			allowed := false
			for _, a := range errsMayImport {
				allowed = allowed || imp == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a))
			}
			if !allowed {
				t.Errorf("errs imports %s; it may import only %v and the standard library", imp, errsMayImport)
			}
		}
		return
	}
	t.Fatal("package errs not found")
}

// sdkMayBeImportedBy is the one package whose code may use the SDK:
// sampling, whose samplers are sdktrace.Samplers. Nothing else may import
// it, so only programs that choose sampling link the SDK through the library.
var sdkMayBeImportedBy = module + "/sampling"

func TestLibraryNeverImportsSDKOrTestTools(t *testing.T) {
	for _, p := range listPackages(t) {
		if strings.HasSuffix(p.ImportPath, "test") { // conformance suites such as journaltest
			continue
		}
		for _, dep := range p.Deps {
			for _, banned := range notInLibrary {
				sdk := banned == "go.opentelemetry.io/otel/sdk" && !strings.HasPrefix(dep, banned+"/metric")
				if sdk && p.ImportPath == sdkMayBeImportedBy {
					continue
				}
				if dep == banned || strings.HasPrefix(dep, banned+"/") {
					t.Errorf("%s depends on %s, which belongs in tests, examples or benchmarks only", p.ImportPath, dep)
				}
			}
		}
	}
}

func TestNothingImportsSampling(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if imp == sdkMayBeImportedBy {
				t.Errorf("%s imports sampling, and so links the SDK into every program that uses it", p.ImportPath)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	if otelpatterns.Version() == "" {
		t.Fatal("Version is empty")
	}
}
