package otelpatterns

import "github.com/otelpatterns/otelpatterns/internal/telemetry"

// Version returns the version of otelpatterns, which is also the
// instrumentation scope version of all its telemetry.
func Version() string { return telemetry.Version }
