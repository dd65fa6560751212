package pgjournal

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/otelpatterns/otelpatterns/journal"
)

// maxCarrierValue is the journal's limit on a carrier value: W3C caps
// baggage at 8192 bytes.
const maxCarrierValue = 8192

// reservedKind starts the kinds of a log's own records.
const reservedKind = "journal."

// row is one record as the statements send it: the columns of the records
// table.
type row struct {
	seq, epoch, attempt int64
	kind, step          string
	end                 bool
	payload             []byte  // nil for an empty payload
	carrier             *string // JSON; nil for an empty carrier
}

// checkID checks a transaction ID as the file log does, and that a text
// column can store it.
func checkID(txID string) error {
	switch {
	case txID == "":
		return invalidError(txID, -1, "the transaction ID is empty")
	case len(txID) > journal.MaxIDLen:
		return invalidError(txID, -1, "the transaction ID is %d bytes; the limit is %d", len(txID), journal.MaxIDLen)
	case !storable(txID):
		return invalidError(txID, -1, "the transaction ID is not UTF-8 or holds a NUL byte, which a PostgreSQL text column cannot store")
	}
	return nil
}

// invalidError is an *journal.InvalidError of txID's record i (-1 for the
// call as a whole), with a long ID cut short.
func invalidError(txID string, i int, format string, args ...any) error {
	if len(txID) > 64 {
		txID = txID[:32] + "..."
	}
	return &journal.InvalidError{TxID: txID, Index: i, Reason: fmt.Sprintf(format, args...)}
}

// validate checks an Append as the file log does, and what PostgreSQL
// cannot store besides: text with a NUL byte or that is not UTF-8, and
// numbers beyond a bigint. It returns the records numbered from
// expectSeq+1, as copies, and the size of their data.
func validate(txID string, expectSeq uint64, records []journal.Record, maxPayload int) ([]row, int, error) {
	invalid := func(i int, format string, args ...any) error { return invalidError(txID, i, format, args...) }
	if err := checkID(txID); err != nil {
		return nil, 0, err
	}
	if len(records) == 0 {
		return nil, 0, invalid(-1, "no records to append")
	}
	rows := make([]row, len(records))
	size := len(txID)
	for i, r := range records {
		switch {
		case r.Kind == "":
			return nil, 0, invalid(i, "the kind is empty")
		case strings.HasPrefix(r.Kind, reservedKind):
			return nil, 0, invalid(i, "kind %q: kinds starting with %q are the log's own", r.Kind, reservedKind)
		case len(r.Kind) > journal.MaxNameLen || len(r.Step) > journal.MaxNameLen:
			return nil, 0, invalid(i, "the kind or step name is longer than %d bytes", journal.MaxNameLen)
		case !storable(r.Kind) || !storable(r.Step):
			return nil, 0, invalid(i, "the kind or step name is not UTF-8 or holds a NUL byte, which a PostgreSQL text column cannot store")
		case r.Attempt < 0:
			return nil, 0, invalid(i, "attempt %d is negative", r.Attempt)
		case r.Epoch > math.MaxInt64:
			return nil, 0, invalid(i, "epoch %d is larger than %d, the largest a PostgreSQL bigint holds", r.Epoch, int64(math.MaxInt64))
		case len(r.Payload) > maxPayload:
			return nil, 0, invalid(i, "the payload is %d bytes; the log's limit is %d (WithMaxPayload)", len(r.Payload), maxPayload)
		case r.End && i < len(records)-1:
			return nil, 0, invalid(i, "an End record must be the last of the append")
		}
		for k, v := range r.Carrier {
			if k == "" || len(k) > journal.MaxNameLen || len(v) > maxCarrierValue {
				return nil, 0, invalid(i, "carrier entry %q is empty or too long", k)
			}
			if !storable(k) || !storable(v) {
				return nil, 0, invalid(i, "carrier entry %q is not UTF-8 or holds a NUL byte, which jsonb cannot store", k)
			}
		}
		w := row{
			seq: int64(expectSeq) + int64(i) + 1, epoch: int64(r.Epoch), attempt: int64(r.Attempt),
			kind: r.Kind, step: r.Step, end: r.End,
		}
		if len(r.Payload) > 0 {
			w.payload = append([]byte{}, r.Payload...)
		}
		if len(r.Carrier) > 0 {
			b, err := json.Marshal(r.Carrier)
			if err != nil { // a map of strings that are UTF-8 always marshals
				return nil, 0, invalid(i, "the carrier does not encode as JSON: %v", err)
			}
			s := string(b)
			w.carrier = &s
			size += len(s)
		}
		size += 8*3 + 1 + len(w.kind) + len(w.step) + len(w.payload)
		rows[i] = w
	}
	return rows, size, nil
}

// storable reports whether PostgreSQL can store s as text (and jsonb) in a
// UTF-8 database: valid UTF-8 without a NUL byte.
func storable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// record turns a row read back into the journal's Record.
func (w row) record(txID string) (journal.Record, error) {
	r := journal.Record{
		TxID: txID, Seq: uint64(w.seq), Epoch: uint64(w.epoch), Kind: w.kind, Step: w.step,
		Attempt: int(w.attempt), End: w.end, Payload: w.payload,
	}
	if w.carrier != nil {
		var c map[string]string
		if err := json.Unmarshal([]byte(*w.carrier), &c); err != nil {
			return r, fmt.Errorf("pgjournal: load %q: record %d: the carrier is not a JSON object of strings: %w", txID, w.seq, err)
		}
		if len(c) > 0 {
			r.Carrier = c
		}
	}
	return r, nil
}
