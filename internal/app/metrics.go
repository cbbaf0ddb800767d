package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/keyfort/keyfort/internal/metrics"
)

// measuredJob counts the runs, failures and duration of one job runner
// (keyfort_job_runs_total, keyfort_job_failures_total,
// keyfort_job_duration_seconds, labelled job).
type measuredJob struct {
	jobRunner
	runs, failures *metrics.Counter
	dur            *metrics.Histogram
}

// RunJobs implements jobRunner.
func (m *measuredJob) RunJobs(ctx context.Context) error {
	start := time.Now()
	err := m.jobRunner.RunJobs(ctx)
	m.dur.ObserveDuration(time.Since(start))
	m.runs.Inc()
	if err != nil {
		m.failures.Inc()
	}
	return err
}

// measureJobs wraps each named job runner with its metrics; with no
// registry it returns the runners as they are.
func measureJobs(reg *metrics.Registry, names []string, jobs []jobRunner) []jobRunner {
	if reg == nil {
		return jobs
	}
	runs := reg.Counter("keyfort_job_runs_total", "Runs of a background job (ticker, start-up, RunJobs, clock advances).", "job")
	failures := reg.Counter("keyfort_job_failures_total", "Runs of a background job that returned an error.", "job")
	dur := reg.Histogram("keyfort_job_duration_seconds", "Duration of a background job's run.", metrics.DurationBuckets, "job")
	out := make([]jobRunner, len(jobs))
	for i, j := range jobs {
		n := names[i]
		out[i] = &measuredJob{jobRunner: j, runs: runs.With(n), failures: failures.With(n), dur: dur.With(n)}
	}
	return out
}

// errNotReady is what /ready answers before Start's jobs and once Close
// has begun.
var errNotReady = errors.New("app: not ready: the background jobs are not running")

// Ready reports whether the app serves (GET /ready): the store answers
// its ping and the background jobs run (Start has started them and Close
// has not begun).
func (a *App) Ready(ctx context.Context) error {
	if !a.running.Load() {
		return errNotReady
	}
	return a.store.Ping(ctx)
}

// startMetrics listens on --metrics-listen and serves GET /metrics there
// (nothing else); nothing without the setting.
func (a *App) startMetrics() error {
	if a.cfg.MetricsListen == "" {
		return nil
	}
	l, err := net.Listen("tcp", a.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("app: metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	reg := a.metrics
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", metrics.ContentType)
		if err := reg.WriteText(w); err != nil {
			a.log.Debug("metrics: write", "error", err)
		}
	})
	a.metricsSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() { _ = a.metricsSrv.Serve(l) }()
	// The bound address, not the setting: with port 0 this line is how an
	// operator (and the tests) learn where to scrape.
	a.log.Info("metrics listening", "addr", l.Addr().String(), "path", "/metrics")
	return nil
}
