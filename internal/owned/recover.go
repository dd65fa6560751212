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
// work already started goes on. The leases of the claimed transactions
// that nothing drives here are given back at the end.
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
		defer l.ReleaseIdle(ids)
	}
	if err != nil {
		return nil, err
	}
	var zero T
	var reports []R
	var running []T
	for _, id := range ids {
		live, report, err := takeOne(ctx, s, l, id, epochs[id], take)
		switch {
		case err != nil:
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
// when there are leases.
func takeOne[T comparable, R any](ctx context.Context, s *Set[T], l *Leases[T], id string, epoch uint64,
	take func(ctx context.Context, id string, epoch uint64) (T, *R, error),
) (live T, report *R, err error) {
	if l != nil {
		unlock, err := l.Lock(ctx, id)
		if err != nil {
			return live, nil, err
		}
		defer unlock()
	}
	if _, ok := s.Get(id); ok {
		return live, nil, nil
	}
	return take(ctx, id, epoch)
}
