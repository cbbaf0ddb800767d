package app

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/cloudtrail"
	"github.com/keyfort/keyfort/internal/cloudtrail/ctapi"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/secretsmanager"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/seed"
	"github.com/keyfort/keyfort/internal/server"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/webhook"
)

// serviceDeps are what the services are built from.
type serviceDeps struct {
	store  storage.Store
	sealer *envelope.Sealer
	// sealKey chooses the root key key material is sealed under
	// (kms.Config.SealKey); nil on the embedded store.
	sealKey func(context.Context, storage.Tx) ([8]byte, error)
	now     func() time.Time
	rand    io.Reader
	logger  *slog.Logger
	// rotationWebhooks maps rotation Lambda ARNs to webhook URLs
	// (config.Config.RotationWebhooks).
	rotationWebhooks map[string]string
	// events is what CloudTrail's LookupEvents reads (Options.EventFinder);
	// nil finds no events.
	events cloudtrail.Finder
	// metrics receives the services' cache metrics; nil records nothing.
	metrics *metrics.Registry
	// audit receives the service events of the background work (KMS's
	// DeleteKey, RotateKey, DeleteExpiredKeyMaterial); nil records none.
	audit audit.Sink
	// xks calls external key store proxies (kms.Config.XKS).
	xks kms.XKSClient
}

// services are the service implementations the server dispatches to, and
// the background work they need.
type services struct {
	kms kmsapi.Service
	sm  smapi.Service
	ct  *cloudtrail.Service
	// jobs run on a ticker and once at start; nil entries are skipped.
	jobs []jobRunner
	// jobNames name jobs, one for one (the job label of the metrics).
	jobNames []string
	// flushUsage writes the key uses KMS noted for GetKeyLastUsage (also a
	// part of KMS's jobs), for the last time at shutdown.
	flushUsage func(context.Context) error
	// seed applies a seed file (KMS first: secrets may name seeded keys).
	seed func(context.Context, *seed.File) error
}

// jobRunner performs the background work that is due, once.
type jobRunner interface {
	RunJobs(ctx context.Context) error
}

// rotationInvoker returns the webhook invoker of Secrets Manager rotations,
// or nil (every rotation function answers AccessDeniedException) when no
// webhook is configured. config.Validate has checked the URLs, so New does
// not fail here; if it did, rotation stays off and the cause is logged.
func rotationInvoker(targets map[string]string, log *slog.Logger) secretsmanager.RotationInvoker {
	if len(targets) == 0 {
		return nil
	}
	inv, err := webhook.New(targets, webhook.Options{})
	if err != nil {
		log.Error("rotation webhooks are not usable; RotateSecret will answer AccessDeniedException", "err", err)
		return nil
	}
	return inv
}

// kmsServiceEvents writes KMS's service events to the audit trail, as
// CloudTrail records them (kmsServiceEvent); nil for no sink. On the
// trail, their records committed with the jobs' changes
// (kmsServiceEventRecord), so WriteCommitted writes them.
func kmsServiceEvents(sink audit.Sink) func(context.Context, []kms.ServiceEvent) error {
	if sink == nil {
		return nil
	}
	return func(ctx context.Context, events []kms.ServiceEvent) error {
		out := make([]*audit.Event, len(events))
		for i, e := range events {
			out[i] = kmsServiceEvent(e)
		}
		if t, ok := sink.(*audit.Trail); ok {
			return t.WriteCommitted(ctx, out)
		}
		return audit.WriteAll(ctx, sink, out)
	}
}

// kmsServiceEventRecord is the store's record of a KMS service event,
// appended with the job's change (kms.Config.ServiceEventRecord); nil
// when the sink is not a trail kept in the store.
func kmsServiceEventRecord(sink audit.Sink) func(kms.ServiceEvent) *storage.EventRecord {
	t, ok := sink.(*audit.Trail)
	if !ok {
		return nil
	}
	return func(e kms.ServiceEvent) *storage.EventRecord { return t.Record(kmsServiceEvent(e)) }
}

// kmsServiceEvent is the CloudTrail event of a KMS service event.
func kmsServiceEvent(e kms.ServiceEvent) *audit.Event {
	res := []audit.Resource{{AccountID: e.Account, Type: "AWS::KMS::Key", ARN: e.KeyARN}}
	return audit.NewServiceEvent("kms.amazonaws.com", e.Name, e.Time, e.ID, e.Account, e.Region, res, e.Details)
}

// newServices builds the services. THIS IS THE ONE PLACE where service
// implementations are chosen:
//   - KMS: the real service (internal/kms), every operation; external
//     key store proxies are called through internal/xks/xksclient.
//   - Secrets Manager: the real service (internal/secretsmanager), every
//     operation.
//   - CloudTrail: internal/cloudtrail, LookupEvents only (every other
//     operation answers UnsupportedOperationException), reading the trail
//     through the Finder the app was given.
func newServices(d serviceDeps) services {
	k := kms.New(kms.Config{
		Store:   d.store,
		Sealer:  d.sealer,
		SealKey: d.sealKey,
		Now:     d.now,
		Rand:    d.rand,
		Logger:  d.logger.With("service", "kms"),
		Metrics: d.metrics,

		ServiceEvents:      kmsServiceEvents(d.audit),
		ServiceEventRecord: kmsServiceEventRecord(d.audit),
		XKS:                d.xks,
	})
	smLog := d.logger.With("service", "secretsmanager")
	smImpl := secretsmanager.New(secretsmanager.Config{
		Store:    d.store,
		KMS:      k,
		Now:      d.now,
		Rand:     d.rand,
		Logger:   smLog,
		Rotation: rotationInvoker(d.rotationWebhooks, smLog),
		Metrics:  d.metrics,
	})
	var sm smapi.Service = smImpl
	events := d.events
	if events == nil {
		events = cloudtrail.NoEvents{} // a test's services without a trail
	}
	ct := cloudtrail.New(cloudtrail.Config{Finder: events, Now: d.now})
	s := services{kms: k, sm: sm, ct: ct, flushUsage: k.FlushKeyUsage}
	s.seed = func(ctx context.Context, f *seed.File) error {
		if err := k.Seed(ctx, f.Keys); err != nil {
			return err
		}
		return smImpl.Seed(ctx, f.Secrets)
	}
	for i, svc := range []any{s.kms, s.sm} {
		if j, ok := svc.(jobRunner); ok {
			s.jobs = append(s.jobs, j)
			s.jobNames = append(s.jobNames, []string{"kms", "secretsmanager"}[i])
		}
	}
	return s
}

// kmsServer describes the KMS service to the server, with the service's
// one mapping of errors that are not the client's.
func kmsServer(s services) server.Service {
	svc := server.NewService(kmsapi.Facts(), kmsapi.Operations(s.kms), kmsapi.Errors)
	svc.InternalMessage = kms.InternalMessage
	svc.MapError = kms.MapError
	return svc
}

// smServer describes the Secrets Manager service to the server.
func smServer(s services) server.Service {
	svc := server.NewService(smapi.Facts(), smapi.Operations(s.sm), smapi.Errors)
	svc.InternalMessage = secretsmanager.InternalMessage
	return svc
}

// ctServer describes the CloudTrail service to the server: the table of
// cloudtrail.Operations (LookupEvents; UnsupportedOperationException for
// the rest).
func ctServer(s services) server.Service {
	svc := server.NewService(ctapi.Facts(), cloudtrail.Operations(s.ct), ctapi.Errors)
	svc.InternalMessage = cloudtrail.InternalMessage
	return svc
}
