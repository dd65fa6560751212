//go:build race

package functional_test

const raceEnabled = true
