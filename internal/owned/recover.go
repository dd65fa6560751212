package owned

import "context"

// Recover is the loop of a runner's Recover, over ids, the transactions
// its journal shows unfinished. It calls take for each that has no live
// work here; take either starts driving it, returning the live work, or
// answers at once with a report (or with neither, for one that is not
// the runner's). Then Recover waits for each work it started, through
// wait, and returns every report, in that order. An error from take or
// wait stops the loop and is returned with the reports so far; the work
// already started goes on.
func Recover[T comparable, R any](ctx context.Context, s *Set[T], ids []string,
	take func(ctx context.Context, id string) (live T, report *R, err error),
	wait func(ctx context.Context, live T) (R, error),
) ([]R, error) {
	var zero T
	var reports []R
	var running []T
	for _, id := range ids {
		if _, ok := s.Get(id); ok {
			continue
		}
		live, report, err := take(ctx, id)
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
