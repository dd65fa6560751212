package errs

import (
	"fmt"
	"runtime/debug"

	"go.opentelemetry.io/otel/trace"
)

// CodePanic is the code, and so the error.type, of a [*PanicError].
const CodePanic = "panic"

// PanicError is a panic recovered from user code, turned into an error that
// carries the panic's value and the stack of the goroutine that panicked.
//
// Every goroutine this library starts runs user code through [Try], so a
// panic there comes back to the caller as a *PanicError instead of crashing
// the process, and is never swallowed.
type PanicError struct {
	// Value is what was passed to panic.
	Value any
	// Stack is the panicking goroutine's stack, as runtime/debug.Stack
	// formats it, taken where the panic was recovered.
	Stack []byte
}

// Error returns "panic: " followed by the value. It holds no stack; format
// with %+v for that.
func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// Unwrap returns the panic's value when it is an error, so that
// errors.Is(err, io.EOF) holds for a recovered panic(io.EOF), and nil
// otherwise.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// ErrorType returns [CodePanic], so spans and metrics mark every recovered
// panic with error.type "panic", whatever its value.
func (p *PanicError) ErrorType() string { return CodePanic }

// Format implements [fmt.Formatter]: %+v prints Error() and then the stack;
// the other verbs print Error().
func (p *PanicError) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('+'):
		fmt.Fprintf(f, "%s\n\n%s", p.Error(), p.Stack)
	case verb == 'q':
		fmt.Fprintf(f, "%q", p.Error())
	default:
		fmt.Fprint(f, p.Error())
	}
}

// EndOnPanic, deferred right after a span starts, ends the span with the
// panic recorded (a [*PanicError], error.type "panic") when one goes
// through, and lets the panic go on. It does nothing otherwise: the
// caller ends the span as usual.
//
//	ctx, span := tracer.Start(ctx, "process")
//	defer errs.EndOnPanic(span)
func EndOnPanic(span trace.Span) {
	if v := recover(); v != nil {
		Record(span, &PanicError{Value: v, Stack: debug.Stack()})
		span.End()
		panic(v)
	}
}

// Try calls fn and returns its error. If fn panics, Try recovers and returns
// a [*PanicError] with the panic's value and stack instead. It is the helper
// every library goroutine runs user code through:
//
//	err := errs.Try(func() error { return process(ctx, item) })
//	errs.Record(span, err)
//
// A fn that calls runtime.Goexit is not a panic: Try lets it end the
// goroutine, as it would without Try.
func Try(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
