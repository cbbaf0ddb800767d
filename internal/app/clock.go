package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/keyfort/keyfort/internal/clock"
	"github.com/keyfort/keyfort/internal/config"
)

// maxClockSteps bounds the job runs of one clock advance: past it, the
// work still due in the skipped span runs at the new time, all at once.
const maxClockSteps = 10000

// maxClockBody bounds the body of POST /keyfort/clock/advance.
const maxClockBody = 4 << 10

// ClockError is why AdvanceClock refused: Status is the HTTP status the
// admin endpoint answers (403 refused here, 400 bad duration).
type ClockError struct {
	Status int
	Msg    string
}

func (e *ClockError) Error() string { return "app: clock: " + e.Msg }

// dueReporter is a job runner that can tell when its next work falls due
// (kms.Service, secretsmanager.Service).
type dueReporter interface {
	NextDue(ctx context.Context) (unix int64, ok bool, err error)
}

// clockRefusal returns why the clock may not be moved on a server with this
// auth mode listening on addr, or nil: it moves only in dev auth mode on a
// loopback listener (with or without TLS), where only the machine's own
// users reach it. Strict mode's clock is the one its signatures are checked
// against and its data lives by; a non-loopback listener (with
// --insecure-dev-auth) lets others reach it.
func clockRefusal(auth string, addr net.Addr) *ClockError {
	if auth == config.AuthStrict {
		return &ClockError{http.StatusForbidden, "the clock can be moved only in dev auth mode; this server runs --auth strict"}
	}
	if addr == nil {
		return &ClockError{http.StatusForbidden, "the server is not listening yet"}
	}
	if ta, ok := addr.(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		return &ClockError{http.StatusForbidden, fmt.Sprintf("the clock can be moved only on a server that listens on a loopback address; this one listens on %s", addr)}
	}
	return nil
}

// listenAddr returns the listener's address, or nil before Start.
func (a *App) listenAddr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener == nil {
		return nil
	}
	return a.listener.Addr()
}

// Clock returns the server's clock: its time and how far it is ahead of
// real time (or of Options.Now).
func (a *App) Clock() clock.State {
	return clock.State{Now: a.clock.Now().UTC(), Offset: clock.FormatDuration(a.clock.Offset())}
}

// AdvanceClock moves the server's clock forward by d and runs the
// background work that falls due in the span it skips, in order: it moves
// the clock to the first time work falls due (the end of that second), runs
// the jobs (App.RunJobs), and so on until the new time, where it runs them
// once more. So a key whose rotation period passes twice rotates twice,
// each rotation dated when it fell due, and work due earlier runs before
// work due later. It returns once the work is done (a scheduled secret
// rotation has called its webhook).
//
// It is refused (*ClockError, 403) in strict auth and unless the server
// listens on a loopback address; a negative d, one over clock.MaxAdvance,
// or one that would put the clock more than clock.MaxOffset ahead is a
// *ClockError with status 400. The clock never goes back; the offset lives
// in this process (a restart runs on real time again).
func (a *App) AdvanceClock(ctx context.Context, d time.Duration) (clock.State, error) {
	if e := clockRefusal(a.cfg.Auth, a.listenAddr()); e != nil {
		return clock.State{}, e
	}
	switch {
	case d < 0:
		return clock.State{}, &ClockError{http.StatusBadRequest, "the clock only moves forward"}
	case d > clock.MaxAdvance:
		return clock.State{}, &ClockError{http.StatusBadRequest, fmt.Sprintf("the clock moves at most %s at a time", clock.FormatDuration(clock.MaxAdvance))}
	}
	a.advanceMu.Lock()
	defer a.advanceMu.Unlock()
	if a.clock.Offset()+d > clock.MaxOffset {
		return clock.State{}, &ClockError{http.StatusBadRequest, fmt.Sprintf("the clock may be at most %s ahead of real time; it is %s ahead",
			clock.FormatDuration(clock.MaxOffset), clock.FormatDuration(a.clock.Offset()))}
	}
	offset := a.clock.Offset() + d // the clock ends exactly d further ahead
	target := a.clock.Now().Add(d)
	steps := 0
	var prev time.Time // the time of the last step: what was due by then has run
	for steps < maxClockSteps {
		next, ok, err := a.nextDue(ctx)
		if err != nil {
			return a.Clock(), err
		}
		if !ok {
			break
		}
		// The end of the second it falls due in: a record's Due is a Unix
		// second, its date may have a fraction.
		at := time.Unix(next, int64(time.Second-1))
		if !at.Before(target) || (!prev.IsZero() && !at.After(prev)) {
			break // due at or after the target, or still due after its run (failing): the last run takes it
		}
		a.clock.AdvanceTo(at)
		prev = at
		steps++
		if err := a.RunJobs(ctx); err != nil {
			return a.Clock(), err
		}
	}
	a.clock.AdvanceOffsetTo(offset)
	steps++
	if err := a.RunJobs(ctx); err != nil {
		return a.Clock(), err
	}
	st := a.Clock()
	st.Steps = steps
	a.log.Info("clock advanced", "by", clock.FormatDuration(d), "now", st.Now, "offset", st.Offset, "steps", steps)
	return st, nil
}

// nextDue returns the earliest time any service's background work falls
// due, as a Unix second.
func (a *App) nextDue(ctx context.Context) (int64, bool, error) {
	var first int64
	found := false
	for _, j := range a.jobs {
		r, ok := j.(dueReporter)
		if !ok {
			continue
		}
		due, ok, err := r.NextDue(ctx)
		if err != nil {
			return 0, false, fmt.Errorf("app: clock: %w", err)
		}
		if ok && (!found || due < first) {
			first, found = due, true
		}
	}
	return first, found, nil
}

// clockHandler serves the dev clock under /keyfort/ (server.Config.Admin):
//
//	GET  /keyfort/clock          -> 200 {"now": "...", "offset": "8d"}
//	POST /keyfort/clock/advance  {"duration": "8d"}
//	                             -> 200 {"now": "...", "offset": "8d", "steps": 3}
//
// Refused with 403 in strict auth and on a listener that is not loopback;
// the POST needs Content-Type application/json, which a web page cannot
// send to another origin without a preflight the server never answers.
// Errors are {"error": "..."}.
func (a *App) clockHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case clock.PathShow, clock.PathAdvance:
		default:
			writeClockJSON(w, http.StatusNotFound, clock.ErrorBody{Error: fmt.Sprintf("no Keyfort endpoint %s: the clock is GET %s and POST %s", r.URL.Path, clock.PathShow, clock.PathAdvance)})
			return
		}
		if e := clockRefusal(a.cfg.Auth, a.listenAddr()); e != nil {
			writeClockJSON(w, e.Status, clock.ErrorBody{Error: e.Msg})
			return
		}
		if r.URL.Path == clock.PathShow {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				writeClockJSON(w, http.StatusMethodNotAllowed, clock.ErrorBody{Error: "use GET " + clock.PathShow})
				return
			}
			writeClockJSON(w, http.StatusOK, a.Clock())
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeClockJSON(w, http.StatusMethodNotAllowed, clock.ErrorBody{Error: "use POST " + clock.PathAdvance + ` with {"duration": "8d"}`})
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeClockJSON(w, http.StatusUnsupportedMediaType, clock.ErrorBody{Error: "Content-Type must be application/json"})
			return
		}
		d, err := readAdvance(w, r)
		if err != nil {
			writeClockJSON(w, http.StatusBadRequest, clock.ErrorBody{Error: err.Error()})
			return
		}
		st, err := a.AdvanceClock(r.Context(), d)
		var ce *ClockError
		switch {
		case errors.As(err, &ce):
			writeClockJSON(w, ce.Status, clock.ErrorBody{Error: ce.Msg})
		case err != nil:
			a.log.Error("clock advance: background work failed", "error", err, "now", st.Now, "offset", st.Offset)
			writeClockJSON(w, http.StatusInternalServerError, clock.ErrorBody{Error: fmt.Sprintf(
				"the clock moved to %s (offset %s), but background work failed: see the server's log", st.Now.Format(time.RFC3339), st.Offset)})
		default:
			writeClockJSON(w, http.StatusOK, st)
		}
	})
}

// readAdvance reads the body of POST /keyfort/clock/advance: one JSON
// object with the member duration and nothing else.
func readAdvance(w http.ResponseWriter, r *http.Request) (time.Duration, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxClockBody))
	dec.DisallowUnknownFields()
	var req clock.AdvanceRequest
	if err := dec.Decode(&req); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return 0, fmt.Errorf("the body is over %d bytes", maxClockBody)
		}
		return 0, fmt.Errorf(`the body must be a JSON object such as {"duration": "8d"}: %v`, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, errors.New(`the body must be one JSON object such as {"duration": "8d"}, with nothing after it`)
	}
	return clock.ParseDuration(req.Duration)
}

func writeClockJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // not with these types
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
