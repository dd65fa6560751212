package telemetry

import semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

// Version is the version of otelpatterns. It is the instrumentation scope
// version of every tracer and meter the library creates.
const Version = "0.1.0"

// SchemaURL is the semantic-conventions schema that the library's telemetry
// follows. It is set on every tracer and meter the library creates.
const SchemaURL = semconv.SchemaURL

// ModulePath is the module's import path; every instrumentation scope is a
// package path under it, which each package exports as its ScopeName
// ("github.com/otelpatterns/otelpatterns/pool").
const ModulePath = "github.com/otelpatterns/otelpatterns"
