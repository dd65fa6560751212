// Package twophasehttp is the HTTP transport of package twophase: a
// participant in one process, its coordinator in another.
//
//	// In the ledger service:
//	h, err := twophasehttp.Handler(local) // a twophase.Participant, such as twophase.Local
//	mux.Handle("/2pc/", http.StripPrefix("/2pc", h))
//
//	// In the coordinator's:
//	ledger, err := twophasehttp.NewClient("ledger-a", "http://ledger-a:8080/2pc")
//	decision, err := coord.Execute(ctx, "transfer-9", ledger, other)
//	status, err := twophasehttp.StatusHandler(coord)
//	mux.Handle("/2pc/", http.StripPrefix("/2pc", status))
//
//	// Back in the ledger service, for transactions in doubt:
//	sc, err := twophasehttp.NewStatusClient("http://coordinator:8080/2pc")
//	err = local.Resolve(ctx, sc.Status)
//
// Every request carries the W3C trace context and baggage of its caller,
// through the configured propagators, and the handlers continue it in a
// SERVER span, so a transaction across three processes is one trace. A
// client bounds each request (WithTimeout) and retries one that got no
// answer (WithRetry). Its errors tell a no vote (twophase.ErrVoteNo, from a
// 409) from a participant that could not be reached
// (twophase.ErrUnreachable): both abort the transaction, but only one is a
// decision of the participant's.
package twophasehttp
