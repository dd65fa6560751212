// Package observability holds no code: it is the examples' Prometheus
// setup (prometheus.yml, rules/recording.yml, rules/alerts.yml) and the
// tests that check it against the library's metrics and a real
// Prometheus. See README.md.
package observability
