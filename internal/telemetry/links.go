package telemetry

import "go.opentelemetry.io/otel/trace"

// MaxLinks is the most links a fan-in span carries; the SDK's default limit
// is 128 too, and beyond it links only cost memory.
const MaxLinks = 128

// Links returns links to the first [MaxLinks] valid span contexts of scs, to
// pass to the span's start (trace.WithLinks); the span says how many inputs
// it stands for in an attribute of its own (messaging.batch.message_count
// for a batch). Invalid span contexts (inputs that were not traced) are
// skipped.
func Links(scs []trace.SpanContext) []trace.Link {
	var links []trace.Link
	for _, sc := range scs {
		if !sc.IsValid() {
			continue
		}
		if links == nil {
			links = make([]trace.Link, 0, min(len(scs), MaxLinks))
		}
		if links = append(links, trace.Link{SpanContext: sc}); len(links) == MaxLinks {
			break
		}
	}
	return links
}
