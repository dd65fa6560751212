package concurrency

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// ScopeName is the instrumentation scope of a channel's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/concurrency"

// The names this package emits; README.md's Telemetry reference lists them.
const (
	keyChannel = attribute.Key(telemetry.Prefix + "channel.name")

	metricSent     = telemetry.Prefix + "channel.sent"
	metricReceived = telemetry.Prefix + "channel.received"
	metricBlocked  = telemetry.Prefix + "channel.send.blocked"
	metricLength   = telemetry.Prefix + "channel.length"

	// messagingSystem is the messaging.system of an in-process channel.
	messagingSystem = "otelpatterns"
)

// channelInstruments is a channel's telemetry, built once in New, with the
// attribute sets its hot path uses.
type channelInstruments struct {
	tel       *telemetry.Telemetry
	sendName  string
	procName  string
	sendAttrs []attribute.KeyValue
	procAttrs []attribute.KeyValue

	sent     metric.Int64Counter
	received metric.Int64Counter
	blocked  metric.Float64Histogram
	length   metric.Int64ObservableUpDownCounter
	byName   []metric.AddOption
	recName  []metric.RecordOption
	obsName  metric.ObserveOption
}

func newChannelInstruments(c *config) *channelInstruments {
	tel := telemetry.New(ScopeName, c.tel)
	set := attribute.NewSet(keyChannel.String(c.name))
	common := []attribute.KeyValue{semconv.MessagingSystemKey.String(messagingSystem), semconv.MessagingDestinationName(c.name)}
	return &channelInstruments{
		tel:       tel,
		sendName:  "send " + c.name,
		procName:  "process " + c.name,
		sendAttrs: append([]attribute.KeyValue{semconv.MessagingOperationTypeSend, semconv.MessagingOperationName("send")}, common...),
		procAttrs: append([]attribute.KeyValue{semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process")}, common...),
		sent:      tel.Counter(metricSent, "{value}", "Values sent on the channel."),
		received:  tel.Counter(metricReceived, "{value}", "Values received from the channel."),
		blocked:   tel.Duration(metricBlocked, "How long Send waited for room in the channel: its backpressure."),
		length:    tel.ObservableUpDownCounter(metricLength, "{value}", "Values in the channel's buffer."),
		byName:    []metric.AddOption{metric.WithAttributeSet(set)},
		recName:   []metric.RecordOption{metric.WithAttributeSet(set)},
		obsName:   metric.WithAttributeSet(set),
	}
}

func (in *channelInstruments) observe(length func() int64) func() {
	return in.tel.Observe(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(in.length, length(), in.obsName)
		return nil
	}, in.length)
}
