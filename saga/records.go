package saga

import (
	"encoding/json"
	"fmt"

	"github.com/otelpatterns/otelpatterns/journal"
)

// The kinds of the records a saga writes ahead, in the order they come.
const (
	kindBegin       = "saga.begin"        // payload: beginPayload; the first record
	kindOwner       = "saga.owner"        // a runner took the saga over, with a higher epoch
	kindStepStarted = "saga.step.started" // before an attempt of an action
	kindStepDone    = "saga.step.done"    // payload: the state the action returned
	kindStepFailed  = "saga.step.failed"  // payload: the error's message
	kindAborting    = "saga.aborting"     // payload: why; no action starts after it
	kindCompensated = "saga.compensation.done"
	kindStuck       = "saga.stuck" // payload: why; compensation gave up
	kindRetry       = "saga.retry" // RetryStuck: compensation goes on
	kindEnd         = "saga.end"   // payload: endPayload; End
	outcomeResolved = "resolved by hand"
)

type beginPayload struct {
	Name        string          `json:"name"`
	Version     int             `json:"version"`
	Fingerprint string          `json:"fingerprint"`
	State       json.RawMessage `json:"state"`
}

type endPayload struct {
	Outcome string          `json:"outcome"`
	State   json.RawMessage `json:"state,omitempty"`
	Step    string          `json:"step,omitempty"`  // the step that failed, if one did
	Error   string          `json:"error,omitempty"` // its error, or why the saga was resolved
}

// history is what a saga's records say about it.
type history struct {
	begin    beginPayload
	carrier  map[string]string
	epoch    uint64 // the highest epoch seen
	seq      uint64 // the last record's
	results  []result
	started  map[string]int // step -> last attempt started
	last     string         // the step started last
	done     map[string]bool
	comped   map[string]bool
	aborting bool
	reason   string // why it aborted: a step's error, or the caller's
	failed   string // the step that failed, if one did
	stuck    string // why compensation gave up; "" when not stuck
	stuckAt  string // the step it gave up on
	ended    bool
	end      endPayload

	lease uint64 // the epoch of this runner's lease of the saga, if it has one
}

// nextEpoch is the epoch a runner takes the saga over with: above every
// epoch its records carry, and its lease's.
func (h *history) nextEpoch() uint64 { return max(h.epoch+1, h.lease) }

// result is a step's journaled result.
type result struct {
	step  string
	state json.RawMessage
}

// readHistory reads the records of one saga. ok is false when they are not
// a saga's (the journal may be shared with other runners).
func readHistory(recs []journal.Record) (h *history, ok bool, err error) {
	if len(recs) == 0 || recs[0].Kind != kindBegin {
		return nil, false, nil
	}
	h = &history{carrier: recs[0].Carrier, started: map[string]int{}, done: map[string]bool{}, comped: map[string]bool{}}
	if err := json.Unmarshal(recs[0].Payload, &h.begin); err != nil {
		return nil, true, fmt.Errorf("saga: %s: unreadable begin record: %w", recs[0].TxID, err)
	}
	for _, r := range recs {
		h.epoch, h.seq = max(h.epoch, r.Epoch), r.Seq
		switch r.Kind {
		case kindStepStarted:
			h.started[r.Step], h.last = r.Attempt, r.Step
		case kindStepDone:
			h.done[r.Step] = true
			h.results = append(h.results, result{step: r.Step, state: r.Payload})
		case kindStepFailed:
			h.failed, h.reason = r.Step, string(r.Payload)
		case kindAborting:
			h.aborting = true
			if h.reason == "" {
				h.reason = string(r.Payload)
			}
		case kindCompensated:
			h.comped[r.Step] = true
		case kindStuck:
			h.stuck, h.stuckAt = string(r.Payload), r.Step
			if h.stuck == "" {
				h.stuck = "compensation gave up"
			}
		case kindRetry:
			h.stuck, h.stuckAt = "", ""
		case kindEnd:
			h.ended = true
			if err := json.Unmarshal(r.Payload, &h.end); err != nil {
				return nil, true, fmt.Errorf("saga: %s: unreadable end record: %w", r.TxID, err)
			}
		}
	}
	return h, true, nil
}
