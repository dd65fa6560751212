//go:build !race

package observability

const raceEnabled = false
