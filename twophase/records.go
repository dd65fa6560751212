package twophase

import (
	"encoding/json"
	"fmt"

	"github.com/otelpatterns/otelpatterns/journal"
)

// The kinds of the records a coordinator writes ahead.
const (
	kindBegin  = "2pc.begin"  // payload: beginPayload; forced before any Prepare
	kindOwner  = "2pc.owner"  // a coordinator took the transaction over
	kindCommit = "2pc.commit" // the commit decision; forced before any Commit
	kindAbort  = "2pc.abort"  // the abort decision
	kindEnd    = "2pc.end"    // payload: the decision; after every acknowledgement
)

type beginPayload struct {
	Participants []string `json:"participants"`
}

// history is what a transaction's records say about it.
type history struct {
	participants []string
	carrier      map[string]string
	epoch        uint64
	seq          uint64
	decision     Decision
	ended        bool
}

// readHistory reads a transaction's records; ok is false when they are not
// a two-phase commit's (the journal may be shared with sagas).
func readHistory(recs []journal.Record) (h *history, ok bool, err error) {
	if len(recs) == 0 || recs[0].Kind != kindBegin {
		return nil, false, nil
	}
	var begin beginPayload
	if err := json.Unmarshal(recs[0].Payload, &begin); err != nil {
		return nil, true, fmt.Errorf("twophase: %s: unreadable begin record: %w", recs[0].TxID, err)
	}
	h = &history{participants: begin.Participants, carrier: recs[0].Carrier}
	for _, r := range recs {
		h.epoch, h.seq = max(h.epoch, r.Epoch), r.Seq
		switch r.Kind {
		case kindCommit:
			h.decision = Committed
		case kindAbort:
			if h.decision == Pending { // a commit decision never changes
				h.decision = Aborted
			}
		case kindEnd:
			h.ended = true
			if d, err := ParseDecision(string(r.Payload)); err == nil && d != Pending {
				h.decision = d
			}
		}
	}
	return h, true, nil
}
