package telemetry

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// MaxLinks is the most links a fan-in span carries; the SDK's default limit
// is 128 too, and beyond it links only cost memory.
const MaxLinks = 128

// KeyLinkCount is the attribute that holds how many inputs a fan-in span
// stands for, which can exceed the links it carries.
const KeyLinkCount = attribute.Key(Prefix + "link_count")

// Links returns links to the first [MaxLinks] valid span contexts of scs, to
// pass to the span's start (trace.WithLinks), and the [KeyLinkCount]
// attribute with the number of valid span contexts in scs, however many.
// Invalid span contexts (inputs that were not traced) are skipped.
func Links(scs []trace.SpanContext) ([]trace.Link, attribute.KeyValue) {
	var links []trace.Link
	valid := 0
	for _, sc := range scs {
		if !sc.IsValid() {
			continue
		}
		valid++
		if len(links) < MaxLinks {
			if links == nil {
				links = make([]trace.Link, 0, min(len(scs), MaxLinks))
			}
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return links, KeyLinkCount.Int(valid)
}
