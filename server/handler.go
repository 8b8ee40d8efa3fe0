package server

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/oauth"
)

// handlerFunc is an HTTP handler that returns its error instead of writing
// it, so every error path is logged and answered in one place (writeError).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// statusWriter records the status for logs and metrics.
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

// handle adapts h to http.Handler with logging, metrics and panic recovery.
// name labels the metrics; it is a fixed string, never from the request.
func (s *Server) handle(name string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				// A panic is a bug; answer 500 rather than drop the
				// connection, and log it (never the request body).
				s.log.Error("panic in handler", "handler", name, "panic", p)
				if sw.status == 0 {
					oauth.ServerError().Write(sw)
				}
			}
			s.metrics.observe(name, sw.status, time.Since(start))
			// The access log names the route, never the query string or
			// body, which can carry codes, tokens and secrets.
			if s.log.Enabled(r.Context(), slog.LevelDebug) {
				s.log.Debug("request", "handler", name, "method", r.Method, "path", r.URL.Path,
					"status", sw.status, "duration", time.Since(start))
			}
		}()
		if err := h(sw, r); err != nil {
			s.writeError(sw, r, name, err)
		}
	})
}

// writeError answers err: an *oauth.Error as itself, an admin *problem as
// RFC 7807 JSON, and a domain error mapped by its code. 5xx are logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, name string, err error) {
	var oe *oauth.Error
	var pe *problem
	switch {
	case errors.As(err, &oe):
		oe.Write(w)
		return
	case errors.As(err, &pe):
		pe.write(w)
		return
	}
	status := statusOf(err)
	if status >= 500 {
		s.log.Error("request failed", "handler", name, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if isAdmin(r) {
		(&problem{Status: status, Title: http.StatusText(status), Detail: latch.ErrorMessage(err)}).write(w)
		return
	}
	switch status {
	case http.StatusServiceUnavailable:
		oauth.Unavailable().Write(w)
	case http.StatusInternalServerError:
		oauth.ServerError().Write(w)
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
