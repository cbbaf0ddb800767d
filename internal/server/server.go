// Package server is Keyfort's HTTP front end: one net/http server that
// serves the AWS KMS and Secrets Manager APIs on POST /, GET /health, GET
// /ready and, when the app gives a handler for them, Keyfort's own
// endpoints under /keyfort/ (the dev clock).
//
// Each request goes through one generic adapter, whatever the operation:
// request id, panic recovery, target lookup in the operation tables,
// authentication (sigv4), body read with the operation's limit, decode,
// Validate, Invoke, audit (written before the response; a failed audit
// write fails the request) and encode. Services never see HTTP; the wire
// protocol sits behind awsjson.Codec.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/awsjson"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/sigv4"
	"github.com/keyfort/keyfort/internal/uuid"
)

// InternalMessage is the fixed message of every internal error; the cause
// is logged with the request id, never sent.
const InternalMessage = "The request processing has failed because of an unknown error, exception or failure."

// AdminPrefix starts the paths of Keyfort's own endpoints (Config.Admin),
// which are not AWS's.
const AdminPrefix = "/keyfort/"

// Defaults of Config's connection settings (config.Default uses the same
// values).
const (
	DefaultMaxConnections    = 4096
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
)

// Service describes one AWS service served by the server.
type Service struct {
	// TargetPrefix is the X-Amz-Target prefix, e.g. "TrentService".
	TargetPrefix string
	// TargetAliases are further X-Amz-Target prefixes of the service
	// (operation.Facts.TargetAliases).
	TargetAliases []string
	// SigningName is the SigV4 service name of the credential scope, e.g.
	// "kms".
	SigningName string
	// EventSource is the CloudTrail eventSource, e.g. "kms.amazonaws.com".
	EventSource string
	// Operations is the service's operation table.
	Operations []operation.Operation
	// Errors are the exceptions of the model, by code.
	Errors map[string]operation.ErrorShape
	// MessageField is the message member name for codes not in Errors
	// ("message" for KMS, "Message" for Secrets Manager).
	MessageField string
	// InternalErrorCode is the code of internal errors (HTTP 500), e.g.
	// "KMSInternalException".
	InternalErrorCode string
	// InternalMessage is the fixed message of internal errors (the
	// model's wording); empty means the server's InternalMessage.
	InternalMessage string
	// MapError, if set, maps an error the service returned that is not an
	// *awserr.Error to what the client sees (KMS: a request whose context
	// ended is DependencyTimeoutException); nil means the internal error.
	MapError func(err error) *awserr.Error
	// NoResponseElements names operations whose output is never put in
	// the audit trail (responseElements null), such as cryptographic
	// operations. Read-only operations never record their output either.
	NoResponseElements map[string]bool
}

// NewService returns the description of a service from its generated
// package's facts, operation table and error shapes:
// NewService(kmsapi.Facts(), kmsapi.Operations(svc), kmsapi.Errors). The
// service's InternalMessage and MapError are left for the caller to set.
func NewService(f operation.Facts, ops []operation.Operation, errs map[string]operation.ErrorShape) Service {
	none := make(map[string]bool, len(f.NoResponseElements))
	for _, n := range f.NoResponseElements {
		none[n] = true
	}
	return Service{
		TargetPrefix:       f.TargetPrefix,
		TargetAliases:      f.TargetAliases,
		SigningName:        f.SigningName,
		EventSource:        f.EventSource,
		Operations:         ops,
		Errors:             errs,
		MessageField:       f.MessageField,
		InternalErrorCode:  f.InternalErrorCode,
		NoResponseElements: none,
	}
}

// Config configures a Server.
type Config struct {
	// Services are the services to serve (KMS, Secrets Manager).
	Services []Service
	// Auth authenticates requests. Nil means development mode (sigv4.Dev).
	Auth sigv4.Authenticator
	// InsecureDevAuth allows development-mode authentication on a
	// non-loopback address.
	InsecureDevAuth bool
	// Codec is the wire protocol. Nil means AWS JSON 1.1.
	Codec awsjson.Codec
	// Audit receives one event per request. Required.
	Audit audit.Sink
	// Logger receives request and error logs. Nil means discard.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Health reports whether the store is usable (GET /health). Nil means
	// always healthy.
	Health func(ctx context.Context) error
	// Sync, if set, runs before each operation (after its input is
	// validated): it returns once every change committed by any node before
	// the call is visible to this node's caches (storage.ChangeNotifier), so
	// that the request sees every write answered before it began. Its error
	// fails the request as an internal error; it must bound its own wait.
	Sync func(ctx context.Context) error
	// Ready reports whether the server is ready for traffic (GET /ready:
	// the store answers and the background jobs run). Nil means Health.
	Ready func(ctx context.Context) error
	// Metrics, if set, receives the request metrics:
	// keyfort_requests_total{service,operation,code} (code OK or the
	// error code; the series of declared codes exist from the start),
	// keyfort_request_duration_seconds{service,operation} and
	// keyfort_audit_writes_total{result}. Nil records nothing.
	Metrics *metrics.Registry
	// LogRequests logs one line per AWS request at info level (operation,
	// status, duration, request id; never a value); else at debug level.
	LogRequests bool
	// MaxConnections caps the connections held open at once, over all
	// the listeners of Serve; at the cap, connections idle or still
	// sending their request's header are closed, oldest first, to make
	// room (see connLimiter). 0 means DefaultMaxConnections.
	MaxConnections int
	// ReadHeaderTimeout bounds the wait for a request's header (from the
	// connection's start, or from the first byte of a later request). 0
	// means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection after this long without
	// a request. 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Admin, if set, serves the paths under AdminPrefix (the app's dev
	// clock), after dev mode's Host check; nil answers them as any other
	// path that is not POST / or GET /health.
	Admin http.Handler
	// OnUndeclaredError, if set, is called for every error response whose
	// code the operation's model does not declare and that is not one of
	// the protocol's common errors (awserr.IsCommon): tests use it to fail
	// on an error AWS would never answer.
	OnUndeclaredError func(target, code string)
}

// route is one entry of the dispatch table.
type route struct {
	op  operation.Operation
	svc *Service
	m   *routeMetrics
}

// routeMetrics are one operation's series, looked up once in New so that a
// request only adds to atomics. Aliased targets share them.
type routeMetrics struct {
	ok  *metrics.Counter            // code "OK"
	dur *metrics.Histogram          // request duration
	err map[string]*metrics.Counter // by error code: the declared ones and the internal error
}

// Server is the HTTP server. Create it with New.
type Server struct {
	routes   map[string]*route   // by X-Amz-Target
	prefixes map[string]*Service // by target prefix, for unknown operations
	auth     sigv4.Authenticator
	// authInPlace is auth when it can write the caller into the request's
	// state.
	authInPlace sigv4.InPlace
	devAuth     bool
	insecure    bool
	codec       awsjson.Codec
	audit       audit.Sink
	log         *slog.Logger
	now         func() time.Time
	health      func(context.Context) error
	sync        func(context.Context) error
	onUndecl    func(target, code string)
	admin       http.Handler
	ready       func(context.Context) error
	logReqs     bool
	// realClock is true when now is time.Now: a request's start time is
	// then also its monotonic start.
	realClock bool

	requests    *metrics.CounterVec // keyfort_requests_total
	unknownOp   *metrics.Counter    // requests whose target names no operation
	auditOK     *metrics.Counter
	auditFailed *metrics.Counter
	http        *http.Server
	conns       *connLimiter

	hostsMu   sync.Mutex
	listenIPs []net.IP               // the addresses Serve listens on (dev mode's Host check)
	lastHost  atomic.Pointer[string] // the Host allowedHost last allowed
}

// New returns a server for cfg. It returns an error when the configuration
// is incomplete or an operation is listed twice.
func New(cfg Config) (*Server, error) {
	if cfg.Audit == nil {
		return nil, errors.New("server: Config.Audit is required")
	}
	s := &Server{
		routes:   make(map[string]*route),
		prefixes: make(map[string]*Service),
		auth:     cfg.Auth,
		insecure: cfg.InsecureDevAuth,
		codec:    cfg.Codec,
		audit:    cfg.Audit,
		log:      cfg.Logger,
		now:      cfg.Now,
		health:   cfg.Health,
		sync:     cfg.Sync,
		onUndecl: cfg.OnUndeclaredError,
		admin:    cfg.Admin,
		ready:    cfg.Ready,
		logReqs:  cfg.LogRequests,
	}
	s.realClock = cfg.Now == nil
	if s.ready == nil {
		s.ready = cfg.Health
	}
	reg := cfg.Metrics
	s.requests = reg.Counter("keyfort_requests_total",
		"AWS API requests answered, by service (signing name), operation and code (the error code, or OK).",
		"service", "operation", "code")
	durations := reg.Histogram("keyfort_request_duration_seconds",
		"Time from a request's arrival to its response, by service and operation.",
		metrics.DurationBuckets, "service", "operation")
	s.unknownOp = s.requests.With("", "", awserr.CodeUnknownOperation)
	audits := reg.Counter("keyfort_audit_writes_total",
		"Writes of requests' audit events (one per request), by result (ok or error; an error fails the request).",
		"result")
	s.auditOK, s.auditFailed = audits.With("ok"), audits.With("error")
	byOp := make(map[string]*routeMetrics) // service/operation: aliases share
	if s.auth == nil {
		s.auth = sigv4.Dev{}
	}
	s.devAuth = !s.auth.Verifies()
	s.authInPlace, _ = s.auth.(sigv4.InPlace)
	if s.codec == nil {
		s.codec = awsjson.JSON11{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range cfg.Services {
		svc := cfg.Services[i] // copied: later changes to cfg do not reach the server
		if svc.TargetPrefix == "" || svc.SigningName == "" || svc.InternalErrorCode == "" {
			return nil, fmt.Errorf("server: service %q: TargetPrefix, SigningName and InternalErrorCode are required", svc.TargetPrefix)
		}
		if svc.MessageField == "" {
			svc.MessageField = "message"
		}
		p := &svc
		for _, prefix := range append([]string{svc.TargetPrefix}, svc.TargetAliases...) {
			if _, dup := s.prefixes[prefix]; dup {
				return nil, fmt.Errorf("server: target prefix %s listed twice", prefix)
			}
			s.prefixes[prefix] = p
			for _, op := range svc.Operations {
				target := prefix + "." + op.Name
				if _, dup := s.routes[target]; dup {
					return nil, fmt.Errorf("server: operation %s listed twice", target)
				}
				if op.NewInput == nil || op.Invoke == nil {
					return nil, fmt.Errorf("server: operation %s: NewInput and Invoke are required", target)
				}
				key := svc.TargetPrefix + "." + op.Name
				m := byOp[key]
				if m == nil {
					m = &routeMetrics{
						ok:  s.requests.With(svc.SigningName, op.Name, "OK"),
						dur: durations.With(svc.SigningName, op.Name),
						err: make(map[string]*metrics.Counter, len(op.Errors)+1),
					}
					if reg != nil {
						for _, code := range append([]string{svc.InternalErrorCode}, op.Errors...) {
							m.err[code] = s.requests.With(svc.SigningName, op.Name, code)
						}
					}
					byOp[key] = m
				}
				s.routes[target] = &route{op: op, svc: p, m: m}
			}
		}
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	s.conns = newConnLimiter(cfg.MaxConnections, s.log)
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveListened),
		ConnState:         s.conns.connState,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(httpErrorLog{s.log}, "", 0),
	}
	return s, nil
}

// httpErrorLog receives net/http's own error lines. Most are a client's
// doing (a TLS handshake that failed, a malformed request line) and go to
// debug; "http: Accept error: ...; retrying in ..." means the process ran
// out of something (file descriptors, memory) and goes to error.
type httpErrorLog struct{ log *slog.Logger }

func (h httpErrorLog) Write(p []byte) (int, error) {
	level := slog.LevelDebug
	if bytes.Contains(p, []byte("Accept error")) {
		level = slog.LevelError
	}
	h.log.LogAttrs(context.Background(), level, "http: "+string(bytes.TrimSpace(bytes.TrimPrefix(p, []byte("http: ")))))
	return len(p), nil
}

// CheckListener returns an error when addr is not a loopback address and
// the server authenticates in development mode without InsecureDevAuth.
func (s *Server) CheckListener(addr net.Addr) error {
	if !s.devAuth || s.insecure {
		return nil
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("server: refusing to listen on %s: dev auth accepts any credentials, so only a loopback address is allowed without --insecure-dev-auth", addr)
}

// Serve accepts connections on l until Shutdown. It refuses a non-loopback
// listener in development mode (see CheckListener). It returns nil after
// Shutdown.
//
// In development mode the requests Serve accepts must name, in their Host
// header, localhost, a loopback address or the address l listens on (any
// IP address when l listens on all interfaces), with any port: other Hosts
// get 403 AccessDeniedException. That stops a web page from reaching the
// server through DNS rebinding (its requests carry the page's host name).
// Strict mode, whose signatures a page cannot forge, serves any Host.
// ServeHTTP itself does not check the Host.
func (s *Server) Serve(l net.Listener) error {
	if err := s.CheckListener(l.Addr()); err != nil {
		return err
	}
	if ta, ok := l.Addr().(*net.TCPAddr); ok {
		s.hostsMu.Lock()
		s.listenIPs = append(s.listenIPs, ta.IP)
		s.hostsMu.Unlock()
	}
	if err := s.http.Serve(s.conns.listener(l)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done; then it closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// One allocation holds the request's state, and one random read makes
	// its request id and its audit event id (used once authenticated).
	c := new(call)
	c.reqID, c.newEventID = uuid.NewPair()
	reqID := c.reqID
	c.header[0] = reqID
	w.Header()[headerRequestID] = c.header[:]
	if r.URL.Path == "/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.serveHealth(w, r)
		return
	}
	if r.URL.Path == "/ready" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.serveReady(w, r)
		return
	}
	if s.admin != nil && strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.admin.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != "/" || r.Method != http.MethodPost {
		s.writeError(w, awserr.WithStatus(http.StatusNotFound, awserr.CodeUnknownOperation,
			"Keyfort serves AWS requests on POST / and health on GET /health"), "message")
		return
	}
	if isQuery(r) {
		s.serveQuery(w, r, reqID)
		return
	}
	s.serveAWS(w, r, c)
}

// serveListened is the handler of Serve: dev mode's Host check, then
// ServeHTTP.
func (s *Server) serveListened(w http.ResponseWriter, r *http.Request) {
	if s.devAuth && !s.allowedHost(r.Host) {
		w.Header()[headerRequestID] = []string{newRequestID()}
		field := "message"
		prefix, _, _ := cutTarget(r.Header.Get(awsjson.HeaderTarget))
		if svc := s.prefixes[prefix]; svc != nil {
			field = svc.MessageField
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "refused a request for another host (dev mode)",
			slog.String("remote", r.RemoteAddr))
		e := awserr.WithStatus(http.StatusForbidden, awserr.CodeAccessDenied,
			"Keyfort in dev auth mode serves only requests whose Host is localhost, a loopback address "+
				"or its listen address (protection against DNS rebinding); use that address, or strict auth")
		if r.URL.Path == "/" && isQuery(r) {
			writeQueryError(w, queryAuthError(e), w.Header()[headerRequestID][0])
			return
		}
		s.writeError(w, e, field)
		return
	}
	s.ServeHTTP(w, r)
}

// allowedHost reports whether hostport (a Host header) names localhost, a
// loopback address or an address Serve listens on, with any port. The last
// Host it allowed is remembered, and allowed again without parsing (a
// client sends the same Host with every request): an allowed Host stays
// allowed, since listenIPs only grows.
func (s *Server) allowedHost(hostport string) bool {
	if last := s.lastHost.Load(); last != nil && *last == hostport {
		return true
	}
	if !s.checkHost(hostport) {
		return false
	}
	h := hostport // only a Host that misses escapes
	s.lastHost.Store(&h)
	return true
}

// checkHost is allowedHost without its memory.
func (s *Server) checkHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	s.hostsMu.Lock()
	defer s.hostsMu.Unlock()
	for _, l := range s.listenIPs {
		if l.IsUnspecified() || l.Equal(ip) {
			return true
		}
	}
	return false
}

var headerRequestID = http.CanonicalHeaderKey(awsjson.HeaderRequestID)

// call is the state of one AWS request, made by ServeHTTP.
type call struct {
	rt       *route
	caller   *identity.Caller
	in       operation.Input
	out      operation.Output
	err      *awserr.Error // set when the request fails
	field    string        // message member of err
	decoded  bool          // in holds the decoded request
	start    time.Time
	notes    *operation.Notes // what the service tells the audit trail
	eventID  string           // the request's audit event id, once authenticated
	reqID    string
	target   string
	response []byte
	gone     bool // the client went away: nothing is written

	// Storage that saves allocations: the request id header's value, the
	// event id to use once authenticated, what notes and (with an
	// authenticator that is sigv4.InPlace) caller point to, and the context
	// node of an authenticated request.
	header     [1]string
	newEventID string
	notesBuf   operation.Notes
	callerBuf  identity.Caller
	ctx        callCtx
	// The request's own audit event as writeAudit writes it, and its
	// resources' first backing array (most requests act on one).
	event    audit.Event
	eventRes [1]audit.Resource
}

// callCtx is the context of an authenticated request: it carries the
// caller (identity.From), the notes (operation's AddResource, AddEvent...)
// and the event id (operation.EventID) of its call in one node, where a
// context.WithValue for each would make three. The call's caller, notes and eventID do not change once it is in
// use.
type callCtx struct {
	context.Context
	c *call
}

func (x *callCtx) Value(key any) any {
	if v, ok := identity.ContextValue(key, x.c.caller); ok {
		return v
	}
	if v, ok := operation.ContextValue(key, x.c.notes, &x.c.eventID); ok {
		return v
	}
	return x.Context.Value(key)
}

// statusClientGone is the status logged for a request whose client went
// away before the response (nginx's 499, "client closed request"); no
// response is written.
const statusClientGone = 499

func (s *Server) serveAWS(w http.ResponseWriter, r *http.Request, c *call) {
	reqID := c.reqID
	c.start, c.target = s.now(), r.Header.Get(awsjson.HeaderTarget)
	began := c.start // time.Now's reading is monotonic
	if !s.realClock {
		began = time.Now() // monotonic: the server's clock may be moved meanwhile
	}
	status := http.StatusOK
	defer func() {
		if p := recover(); p != nil {
			// A panic outside Invoke (Invoke has its own guard): answer the
			// internal error if nothing was written yet and keep serving.
			s.log.Error("panic while serving request", "request_id", reqID, "op", c.target,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			code, field, msg := awserr.CodeInternalFailure, "message", InternalMessage
			if c.rt != nil {
				code, field, msg = c.rt.svc.InternalErrorCode, c.rt.svc.MessageField, c.rt.svc.internalMessage()
			}
			status = http.StatusInternalServerError
			c.err = awserr.WithStatus(status, code, msg)
			s.writeError(w, c.err, field)
		}
		took := time.Since(began)
		s.observe(c, took)
		level := slog.LevelDebug
		if s.logReqs {
			level = slog.LevelInfo
		}
		if s.log.Enabled(r.Context(), level) {
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("op", c.target), slog.Int("status", status),
				slog.Duration("duration", took), slog.String("request_id", reqID))
		}
	}()
	status = s.dispatch(w, r, c)
}

// observe adds the request to its operation's metrics: the count of its
// code and its duration. A target that names no operation is counted
// without service and operation, so that clients cannot make series.
func (s *Server) observe(c *call, took time.Duration) {
	if c.rt == nil {
		s.unknownOp.Inc()
		return
	}
	m := c.rt.m
	m.dur.ObserveDuration(took)
	if c.err == nil {
		m.ok.Inc()
		return
	}
	cnt, ok := m.err[c.err.Code]
	if !ok { // a common error (ValidationException, AccessDenied, ...): rare, not precomputed
		cnt = s.requests.With(c.rt.svc.SigningName, c.rt.op.Name, c.err.Code)
	}
	cnt.Inc()
}

// dispatch runs the request and writes the response; it returns the status.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, c *call) int {
	c.rt = s.routes[c.target]
	if c.rt == nil {
		field := "message"
		prefix, _, _ := cutTarget(c.target)
		if svc := s.prefixes[prefix]; svc != nil {
			field = svc.MessageField
		}
		e := awserr.New(awserr.CodeUnknownOperation, "The operation named in the X-Amz-Target header is not recognized.")
		s.writeError(w, e, field)
		return e.Status
	}
	svc := c.rt.svc
	ctx := r.Context()

	// The body is read before authenticating: a verified signature covers
	// the payload's hash.
	bufp := awsjson.GetBuffer()
	defer awsjson.PutBuffer(bufp)
	body, err := awsjson.ReadBody(r.Body, r.ContentLength, c.rt.op.MaxBody, (*bufp)[:0])
	*bufp = body[:0]
	if err != nil {
		if _, ok := awserr.As(err); !ok {
			err = s.bodyError(ctx, c, err)
		}
		s.fail(ctx, c, err)
		return s.finish(ctx, w, c)
	}
	var caller *identity.Caller
	if s.authInPlace != nil {
		caller = &c.callerBuf
		err = s.authInPlace.AuthenticateInto(r, body, svc.SigningName, caller)
	} else {
		caller, err = s.auth.Authenticate(r, body, svc.SigningName)
	}
	if err != nil {
		s.fail(ctx, c, err)
		return s.finish(ctx, w, c)
	}
	caller.SourceIP = sourceIP(r.RemoteAddr)
	caller.UserAgent = r.Header.Get("User-Agent")
	caller.RequestID = c.reqID
	caller.SecureTransport = r.TLS != nil
	c.caller = caller
	c.notes = &c.notesBuf
	c.eventID = c.newEventID
	c.ctx = callCtx{Context: ctx, c: c}
	ctx = &c.ctx

	c.in = c.rt.op.NewInput()
	if err := s.codec.Decode(body, c.in); err != nil {
		s.fail(ctx, c, err)
		return s.finish(ctx, w, c)
	}
	c.decoded = true
	if err := c.in.Validate(); err != nil {
		s.fail(ctx, c, err)
		return s.finish(ctx, w, c)
	}
	if s.sync != nil {
		if err := s.sync(ctx); err != nil {
			s.fail(ctx, c, fmt.Errorf("server: sync with the store: %w", err))
			return s.finish(ctx, w, c)
		}
	}
	if !c.rt.op.ReadOnly {
		if cm, ok := s.audit.(audit.Committer); ok {
			// The event commits with the request's change: made when the
			// change commits, so that it names the resources resolved so
			// far; its complete form, with the response, follows.
			ctx = cm.Pending(ctx, func() *audit.Event { return s.event(c) })
		}
	}
	out, err := s.invoke(ctx, c)
	if err != nil {
		s.fail(ctx, c, err)
		return s.finish(ctx, w, c)
	}
	c.out = out
	// The request buffer is free again (decoding copied what it needed):
	// encode the response into it.
	c.response = s.codec.AppendOutput(body[:0], out)
	*bufp = c.response[:0]
	return s.finish(ctx, w, c)
}

// bodyError turns a failure to read the request body (a body shorter than
// its Content-Length, a client too slow to send it within the read
// timeout, a closed connection) into the client's error: it is logged at
// debug level, never as an internal error, and answered with a 400
// SerializationException (which reaches the client only if it is still
// there).
func (s *Server) bodyError(ctx context.Context, c *call, err error) *awserr.Error {
	msg := "The request body ended before its Content-Length"
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "The request body was not received in time"
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "request body unreadable (client's fault)",
		slog.String("request_id", c.reqID), slog.String("op", c.target), slog.String("error", err.Error()))
	return awserr.Serialization(msg)
}

// invoke calls the operation and turns a panic into an internal error, so
// that the request is still audited and answered.
func (s *Server) invoke(ctx context.Context, c *call) (out operation.Output, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("server: panic in %s: %v\n%s", c.target, p, debug.Stack())
		}
	}()
	return c.rt.op.Invoke(ctx, c.in)
}

// fail records err as the request's error, mapping anything that is not
// an *awserr.Error to the service's internal error (and logging it).
func (s *Server) fail(ctx context.Context, c *call, err error) {
	svc := c.rt.svc
	if e, ok := awserr.As(err); ok {
		field := svc.MessageField
		status := e.Status
		if shape, ok := svc.Errors[e.Code]; ok {
			if shape.MessageField != "" {
				field = shape.MessageField
			}
			if status == 0 {
				status = shape.Status
			}
		}
		if status == 0 {
			status = http.StatusBadRequest
		}
		if status != e.Status {
			e = &awserr.Error{Code: e.Code, Message: e.Message, Status: status}
		}
		c.err, c.field = e, field
		return
	}
	if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
		// The request's context ends early only when the client goes
		// away (closes its connection, resets its HTTP/2 stream): no one
		// will read the answer, and it is not the server's fault. The
		// audit event still records the service's error code.
		s.log.LogAttrs(ctx, slog.LevelDebug, "client went away before the response (client's fault)",
			slog.String("request_id", c.reqID), slog.String("op", c.target), slog.String("error", err.Error()))
		c.err, c.field = awserr.WithStatus(http.StatusInternalServerError, svc.InternalErrorCode, svc.internalMessage()), svc.MessageField
		c.gone = true
		if svc.MapError != nil {
			if e := svc.MapError(err); e != nil {
				c.err = e
			}
		}
		return
	}
	if svc.MapError != nil {
		if e := svc.MapError(err); e != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "request ended before its work",
				slog.String("request_id", c.reqID), slog.String("op", c.target), slog.String("error", err.Error()))
			c.err, c.field = e, svc.MessageField
			return
		}
	}
	s.log.LogAttrs(ctx, slog.LevelError, "internal error",
		slog.String("request_id", c.reqID), slog.String("op", c.target), slog.String("error", err.Error()))
	c.err = awserr.WithStatus(http.StatusInternalServerError, svc.InternalErrorCode, svc.internalMessage())
	c.field = svc.MessageField
}

// internalMessage is the message of the service's internal errors.
func (svc *Service) internalMessage() string {
	if svc.InternalMessage != "" {
		return svc.InternalMessage
	}
	return InternalMessage
}

// finish audits the request and writes the response. An audit failure
// turns the response into the internal error.
func (s *Server) finish(ctx context.Context, w http.ResponseWriter, c *call) int {
	if err := s.writeAudit(ctx, c); err != nil {
		s.auditFailed.Inc()
		s.log.LogAttrs(ctx, slog.LevelError, "audit write failed; failing the request",
			slog.String("request_id", c.reqID), slog.String("op", c.target), slog.String("error", err.Error()))
		svc := c.rt.svc
		c.err = awserr.WithStatus(http.StatusInternalServerError, svc.InternalErrorCode, svc.internalMessage())
		c.field = svc.MessageField
	} else {
		s.auditOK.Inc()
	}
	if c.gone {
		return statusClientGone
	}
	if c.err != nil {
		if s.onUndecl != nil && !declares(&c.rt.op, c.err.Code) {
			s.onUndecl(c.target, c.err.Code)
		}
		s.writeError(w, c.err, c.field)
		return c.err.Status
	}
	if err := s.codec.WriteOutput(w, c.response); err != nil {
		s.log.LogAttrs(ctx, slog.LevelDebug, "write response",
			slog.String("request_id", c.reqID), slog.String("error", err.Error()))
	}
	return http.StatusOK
}

// writeAudit writes the request's event and the further events the service
// noted (the GetSecretValue event of each secret a BatchGetSecretValue call
// read, the KMS calls Secrets Manager made on the caller's behalf), with the
// request's identity and id. A noted event is written when the request
// succeeded, or when it is marked Always.
func (s *Server) writeAudit(ctx context.Context, c *call) error {
	// The request's own event lives in its call: writeAudit runs once per
	// call, and a Sink keeps nothing of an event once Write returns.
	main := &c.event
	s.fillEvent(c, main, c.eventRes[:0])
	var more *notedEvents // made for the first further event written
	var events []*audit.Event
	for x := range c.notes.AllEvents() {
		if c.err != nil && !x.Always {
			continue
		}
		if more == nil {
			more = new(notedEvents)
			events = append(more.events[:0], main)
		}
		var e *audit.Event
		var res []audit.Resource
		if n := len(events) - 1; n < len(more.noted) {
			e, res = &more.noted[n], more.res[n][:0]
		} else {
			e = new(audit.Event)
		}
		notedEvent(main, &x, e, res)
		events = append(events, e)
	}
	if events == nil {
		return s.audit.Write(ctx, main)
	}
	return audit.WriteAll(ctx, s.audit, events)
}

// notedEvents holds, in one allocation, what writeAudit needs for a
// request with further events: the slice of the events it writes, the
// first further event (Secrets Manager's call to KMS for GetSecretValue)
// and its resources' first backing array.
type notedEvents struct {
	events [2]*audit.Event
	noted  [1]audit.Event
	res    [1][1]audit.Resource
}

// notedEvent sets *e to the event of x, a further event of the request
// whose own event is main; its resources, if any, are appended to res.
func notedEvent(main *audit.Event, x *operation.Event, e *audit.Event, res []audit.Resource) {
	source := main.EventSource
	if x.Source != "" {
		source = x.Source
	}
	id := x.EventID
	if id == "" {
		id = audit.NewEventID()
	}
	region := main.AWSRegion
	if x.Region != "" {
		region = x.Region
	}
	for _, r := range x.Resources {
		res = append(res, audit.Resource{AccountID: r.Account, Type: r.Type, ARN: r.ARN})
	}
	if x.Service {
		*e = *audit.NewServiceEvent(source, x.Name, main.EventTime, id, main.RecipientAccountID, region, res, x.ServiceEventDetails)
		return
	}
	*e = *audit.NewWithEventID(source, x.Name, main.EventTime, id)
	e.RequestID = main.RequestID
	e.UserIdentity = main.UserIdentity
	e.AWSRegion = region
	e.SourceIPAddress = main.SourceIPAddress
	e.UserAgent = main.UserAgent
	if x.InvokedBy != "" {
		e.UserIdentity.InvokedBy = x.InvokedBy
		e.SourceIPAddress = x.InvokedBy
		e.UserAgent = x.InvokedBy
	}
	e.RecipientAccountID = main.RecipientAccountID
	e.ReadOnly = x.ReadOnly
	e.RequestParameters = x.RequestParameters
	e.ErrorCode = x.ErrorCode
	e.ErrorMessage = x.ErrorMessage
	e.AdditionalEventData = x.AdditionalEventData
	if len(res) > 0 {
		e.Resources = res
	}
}

// event builds the CloudTrail event of the request.
func (s *Server) event(c *call) *audit.Event {
	e := new(audit.Event)
	s.fillEvent(c, e, nil)
	return e
}

// fillEvent sets *e to the CloudTrail event of the request; its resources,
// if any, are appended to res (whose backing array they may use).
func (s *Server) fillEvent(c *call, e *audit.Event, res []audit.Resource) {
	op := c.rt.op
	id := c.eventID
	if id == "" {
		id = audit.NewEventID()
	}
	*e = *audit.NewWithEventID(c.rt.svc.EventSource, op.Name, c.start, id)
	e.RequestID = c.reqID
	e.ReadOnly = op.ReadOnly
	if c.caller != nil {
		e.UserIdentity = userIdentityOf(c.caller)
		e.AWSRegion = c.caller.Region
		e.SourceIPAddress = c.caller.SourceIP
		e.UserAgent = c.caller.UserAgent
		e.RecipientAccountID = c.caller.Account
	}
	if c.decoded {
		e.RequestParameters = auditJSON(c.in)
	}
	for r := range c.notes.AllResources() { // none before authentication
		res = append(res, audit.Resource{AccountID: r.Account, Type: r.Type, ARN: r.ARN})
	}
	if len(res) > 0 {
		e.Resources = res
	}
	if c.err != nil {
		e.ErrorCode = c.err.Code
		e.ErrorMessage = c.err.Message
		return
	}
	if b := c.notes.ResponseElements(); b != nil {
		e.ResponseElements = b
	} else if c.out != nil && !op.ReadOnly && !c.rt.svc.NoResponseElements[op.Name] {
		e.ResponseElements = auditJSON(c.out)
	}
	e.AdditionalEventData = c.notes.AdditionalEventData()
}

// declares reports whether op may answer code: an exception its model
// declares, or a common error.
func declares(op *operation.Operation, code string) bool {
	if awserr.IsCommon(code) {
		return true
	}
	for _, e := range op.Errors {
		if e == code {
			return true
		}
	}
	return false
}

// auditEncoder is implemented by the generated shapes: CloudTrail's form,
// lower-case member names, sensitive members and blobs left out.
type auditEncoder interface {
	AppendAuditJSON(b []byte) []byte
}

// auditJSON encodes v for the audit trail: through AppendAuditJSON when v
// has it, else with encoding/json (sensitive values print as [REDACTED]).
func auditJSON(v any) json.RawMessage {
	if a, ok := v.(auditEncoder); ok {
		return a.AppendAuditJSON(make([]byte, 0, 256))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

func (s *Server) writeError(w http.ResponseWriter, e *awserr.Error, field string) {
	if err := s.codec.WriteError(w, e, field); err != nil {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "write error response", slog.String("error", err.Error()))
	}
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"application/json"}
	if s.health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := s.health(ctx)
		cancel()
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "health check failed", slog.String("error", err.Error()))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable"}`))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// serveReady answers GET /ready: 200 {"status":"ready"} when Config.Ready
// (else Health) reports no error, 503 {"status":"not ready"} otherwise.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header()["Content-Type"] = []string{"application/json"}
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := s.ready(ctx)
		cancel()
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "not ready", slog.String("error", err.Error()))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not ready"}`))
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"status":"ready"}`))
}

// cutTarget splits an X-Amz-Target at its last dot: the prefix may itself
// be dotted ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101").
func cutTarget(t string) (prefix, op string, ok bool) {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] == '.' {
			return t[:i], t[i+1:], true
		}
	}
	return t, "", false
}

func sourceIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// newRequestID returns a random version 4 UUID.
func newRequestID() string { return uuid.New() }

// userIdentityOf is CloudTrail's userIdentity of caller; an assumed-role
// session's has the sessionContext: the role that issued it (type Role,
// its unique id, ARN, account and name) and when its credentials were
// issued, without MFA.
func userIdentityOf(caller *identity.Caller) audit.UserIdentity {
	u := audit.UserIdentity{
		Type:        caller.Type,
		PrincipalID: caller.Principal.UserID,
		ARN:         caller.ARN,
		AccountID:   caller.Account,
		AccessKeyID: caller.AccessKeyID,
		UserName:    caller.UserName,
	}
	if caller.Type == identity.TypeAssumedRole && strings.Contains(caller.Principal.PrincipalARN, ":role/") {
		role := caller.Principal.PrincipalARN
		roleID, _, _ := strings.Cut(caller.Principal.UserID, ":")
		u.SessionContext = &audit.SessionContext{
			SessionIssuer: audit.SessionIssuer{Type: "Role", PrincipalID: roleID, ARN: role, AccountID: caller.Account,
				UserName: role[strings.LastIndexByte(role, '/')+1:]},
			Attributes: audit.SessionAttributes{MFAAuthenticated: "false"},
		}
		if !caller.SessionIssued.IsZero() {
			u.SessionContext.Attributes.CreationDate = caller.SessionIssued.UTC().Format(audit.TimeFormat)
		}
	}
	return u
}
