package retry_test

import (
	"context"
	"io"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

// A policy with a breaker stops retrying once it opens, and makes no
// attempt while it is open.
func TestPolicyWithBreaker(t *testing.T) { synctest.Test(t, testPolicyWithBreaker) }

func testPolicyWithBreaker(t *testing.T) {
	b, err := breaker.New(breaker.WithTripAfter(2))
	require.NoError(t, err)
	defer b.Close()
	p := mustPolicy(t, retry.WithMaxAttempts(5), retry.WithBreaker(b))
	calls := 0
	err = retry.Run(bg, p, func(context.Context) error { calls++; return io.EOF })
	assert.Equal(t, 2, calls, "the breaker opens after 2 and stops the retries")
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.ErrorIs(t, err, io.EOF, "the last error the op returned is kept")

	calls = 0
	err = retry.Run(bg, p, func(context.Context) error { calls++; return nil })
	assert.Zero(t, calls)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 0, re.Attempts)
	assert.Equal(t, breaker.ErrOpen, re.Cause)
	assert.Nil(t, re.Last)
}
