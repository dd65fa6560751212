package owned

import "context"

// Recover is the loop of a runner's Recover. Its transactions are those
// that pending lists (the journal's unfinished ones), or, with leases (l
// not nil), those that l claims: unowned, or whose runner's lease
// expired. It calls take for each that has no live work here, with the
// epoch of its lease (0 without); take either starts driving it,
// returning the live work, or answers at once with a report (or with
// neither, for one that is not the runner's). Then Recover waits for each
// work it started, through wait, and returns every report, in that order.
// An error stops the loop and is returned with the reports so far; the
// work already started goes on. The lease of each claimed transaction that
// nothing drives here is given back in its turn: at once for those take
// answered, at the end for those the loop did not reach.
func Recover[T comparable, R any](ctx context.Context, s *Set[T], l *Leases[T],
	pending func(context.Context) ([]string, error),
	take func(ctx context.Context, id string, epoch uint64) (live T, report *R, err error),
	wait func(ctx context.Context, live T) (R, error),
) ([]R, error) {
	var (
		ids    []string
		epochs map[string]uint64
		err    error
	)
	if l == nil {
		ids, err = pending(ctx)
	} else {
		ids, epochs, err = l.Claim(ctx)
	}
	if err != nil {
		l.ReleaseIdle(ids)
		return nil, err
	}
	var zero T
	var reports []R
	var running []T
	for i, id := range ids {
		live, report, err := takeOne(ctx, s, l, id, epochs[id], take)
		switch {
		case err != nil:
			l.ReleaseIdle(ids[i+1:])
			return reports, err
		case live != zero:
			running = append(running, live)
		case report != nil:
			reports = append(reports, *report)
		}
	}
	for _, live := range running {
		report, err := wait(ctx, live)
		if err != nil {
			return reports, err
		}
		reports = append(reports, report)
	}
	return reports, nil
}

// takeOne calls take for id unless it has live work here, in id's turn
// when there are leases. A claimed transaction that take does not make
// live here has its lease given back, still in its turn, so that no Lease
// of this runner can have taken it meanwhile. A claimed one that is live
// here had let its lease expire in the journal: the claim has just fenced
// it, so it is lost (the hook stops it), and its lease goes back for the
// next round to take it over.
func takeOne[T comparable, R any](ctx context.Context, s *Set[T], l *Leases[T], id string, epoch uint64,
	take func(ctx context.Context, id string, epoch uint64) (T, *R, error),
) (live T, report *R, err error) {
	if l != nil {
		unlock, err := l.Lock(ctx, id)
		if err != nil {
			l.ReleaseIdle([]string{id})
			return live, nil, err
		}
		defer unlock()
	}
	if w, ok := s.Get(id); ok {
		if l != nil {
			l.lose(id, w)
			l.Release(id)
		}
		return live, nil, nil
	}
	live, report, err = take(ctx, id, epoch)
	var zero T
	if l != nil && live == zero {
		l.Release(id)
	}
	return live, report, err
}
