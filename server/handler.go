package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// handlerFunc is an HTTP handler that returns its error instead of writing
// it, so every error path is logged and answered in one place (answer).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// renderer answers err, whose HTTP status is status, in the error format of
// one route group: OAuth JSON, the admin API's problem details, or an HTML
// page. Each group's routes choose theirs when they are registered. id is the
// request's ID, for the answers a person can quote.
type renderer func(w http.ResponseWriter, r *http.Request, status int, err error, id string)

// StatusClientClosedRequest is the status recorded (in metrics and logs,
// never sent) for a request whose client went away before it was answered:
// a hung-up client is not a server failure.
const StatusClientClosedRequest = 499

// HeaderRequestID names the response header carrying the request's ID, the
// same ID that the server's log lines about the request carry.
const HeaderRequestID = "X-Request-Id"

// RequestTimeout bounds how long a request may wait for the store (and any
// other backend): past it the request is answered 503 with Retry-After
// rather than held until the client or the load balancer gives up. A hung
// PostgreSQL (accepting connections but answering nothing) would otherwise
// hold every request, and each one's pooled connection, indefinitely. The
// revocation feed's long-poll is exempt: it bounds its own wait.
const RequestTimeout = 5 * time.Second

// RetryAfterUnavailable is the Retry-After, in seconds, of every 503 that
// does not set its own (RFC 9110 §10.2.3): a backend outage is usually
// seconds, and clients that retry sooner only add load.
const RetryAfterUnavailable = "1"

// errRequestTimeout is the cause of a request context that RequestTimeout
// ended, told apart from a client that hung up.
var errRequestTimeout = errors.New("server: request timed out waiting for a backend")

// unavailableLog paces the log lines about 503s (answer).
var unavailableLog = rate.Sometimes{Interval: time.Second}

type requestIDKey struct{}

// RequestID returns the ID the server gave the request of ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDs makes IDs unique within a process and, through the random
// prefix, across nodes and restarts, without a crypto/rand read per request.
var requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func init() {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	requestIDs.prefix = hex.EncodeToString(b) + "-"
}

func newRequestID() string {
	var b [32]byte
	return string(strconv.AppendUint(append(b[:0], requestIDs.prefix...), requestIDs.n.Add(1), 36))
}

// requestIDHandler adds the request ID of the record's context to every log
// line written with a context (the *Context methods of slog.Logger).
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// statusWriter records the status for logs and metrics, and whether the
// response has started, after which no error may be written into it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's Flush and
// deadlines through this wrapper (the revocation feed streams and outlives
// the http.Server's timeouts).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handle adapts an OAuth endpoint: its errors are answered as RFC 6749 §5.2
// JSON.
func (s *Server) handle(name string, h handlerFunc) http.Handler {
	return s.adapt(name, renderOAuth, h)
}

// adapt turns h into an http.Handler that gives the request an ID (in its
// context, the response header and every log line about it), answers h's
// error with render, logs and counts the outcome, and recovers a panic.
// name labels the metrics; it is a fixed string, never from the request.
func (s *Server) adapt(name string, render renderer, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		w.Header()[HeaderRequestID] = []string{id} // canonical already: no Set
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		if name != "revocations" {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeoutCause(ctx, RequestTimeout, errRequestTimeout)
			defer cancel()
		}
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		status := 0 // what the metrics and the access log record
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					// The handler's way of dropping the connection on
					// purpose: let net/http do that, quietly.
					s.metrics.observe(name, StatusClientClosedRequest, time.Since(start))
					panic(p)
				}
				// A panic is a bug: log it with the stack, and answer 500
				// rather than drop the connection if nothing was sent yet.
				s.log.ErrorContext(r.Context(), "panic in handler", "handler", name, "method", r.Method,
					"path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					render(sw, r, http.StatusInternalServerError, errPanic, id)
				}
				status = sw.status
			}
			if status == 0 {
				status = sw.status
			}
			s.metrics.observe(name, status, time.Since(start))
			// The access log names the route, never the query string or
			// body, which can carry codes, tokens and secrets.
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.DebugContext(r.Context(), "request", "handler", name, "method", r.Method, "path", r.URL.Path,
					"status", status, "duration", time.Since(start))
			}
		}()
		if err := h(sw, r); err != nil {
			status = s.answer(sw, r, name, render, err, id)
		}
	})
}

var errPanic = errors.New("server: handler panicked")

// answer answers h's err with render unless the client has gone or the
// response has started, logs it as it deserves, and returns the status to
// record.
func (s *Server) answer(sw *statusWriter, r *http.Request, name string, render renderer, err error, id string) int {
	ctx := r.Context()
	cause := err // what is logged: the renderers may show err's message
	if context.Cause(ctx) == errRequestTimeout {
		// The client is still there; a backend did not answer in time.
		// Whatever err says (a context error, a driver's), the answer
		// is "try again", not a 500 nor a wrong 4xx (a client lookup cut
		// short must not read as invalid_client): the original error is
		// logged, not rendered.
		err = latch.Errorf(latch.EUNAVAILABLE, "server: %s: no answer from a backend within %v", name, RequestTimeout)
		ctx = context.WithoutCancel(ctx)
	} else if ctx.Err() != nil {
		// The client hung up (or the server is shutting down): whatever
		// failed failed for that reason, and nobody is there to answer.
		s.log.DebugContext(ctx, "client went away before the answer", "handler", name, "method", r.Method,
			"path", r.URL.Path, "err", err)
		return StatusClientClosedRequest
	}
	status := statusOfAny(err)
	if sw.status != 0 {
		// Headers, and perhaps a body, are out: a second answer would
		// corrupt the first. Say so in the log only.
		s.log.ErrorContext(ctx, "request failed after its response started", "handler", name, "method", r.Method,
			"path", r.URL.Path, "status", sw.status, "err", err)
		return sw.status
	}
	if status == http.StatusServiceUnavailable {
		if sw.Header().Get("Retry-After") == "" {
			sw.Header().Set("Retry-After", RetryAfterUnavailable)
		}
		// An outage answers every request 503: logging each would bury
		// the log at thousands of lines a second. One line a second says
		// what fails and why; the metrics count every 503 per handler.
		unavailableLog.Do(func() {
			s.log.WarnContext(ctx, "request answered 503: a backend is unavailable (logged at most once a second; latch_http_requests_total{code=\"503\"} counts them all)",
				"handler", name, "method", r.Method, "path", r.URL.Path, "err", cause)
		})
	} else if status >= 500 {
		s.log.ErrorContext(ctx, "request failed", "handler", name, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	render(sw, r, status, err, id)
	if sw.status == 0 {
		return status
	}
	return sw.status
}

// statusOfAny is the status err is answered with: its own for the wire's
// error types, the domain code's otherwise.
func statusOfAny(err error) int {
	var oe *oauth.Error
	var pe *problem
	switch {
	case errors.As(err, &oe):
		if oe.Status == 0 {
			return http.StatusBadRequest
		}
		return oe.Status
	case errors.As(err, &pe):
		return pe.Status
	}
	return statusOf(err)
}

// renderOAuth answers as the OAuth endpoints do (RFC 6749 §5.2). A
// server_error names the request ID, so a developer can quote it.
func renderOAuth(w http.ResponseWriter, r *http.Request, status int, err error, id string) {
	var oe *oauth.Error
	if errors.As(err, &oe) {
		oe.Write(w)
		return
	}
	switch status {
	case http.StatusServiceUnavailable:
		oauth.Unavailable().Write(w)
	case http.StatusInternalServerError:
		oauth.ServerError(id).Write(w)
	default:
		oauth.BadRequest(oauth.ErrInvalidRequest, latch.ErrorMessage(err)).Write(w)
	}
}

// statusOf maps a domain error code to an HTTP status, in one place.
func statusOf(err error) int {
	switch latch.ErrorCode(err) {
	case latch.ENOTFOUND:
		return http.StatusNotFound
	case latch.ECONFLICT:
		return http.StatusConflict
	case latch.EINVALID:
		return http.StatusBadRequest
	case latch.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case latch.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
