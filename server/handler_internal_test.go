package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/latch-auth/latch"
	"github.com/latch-auth/latch/internal/latchtest"
)

// syncBuffer is a log sink that tests read while handlers write.
type syncBuffer struct{ latchtest.LockedBuffer }

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// adapterServer is the least Server the adapter needs: a JSON logger at
// debug level, wrapped as New wraps it, and metrics.
func adapterServer() (*Server, *syncBuffer) {
	logs := &syncBuffer{}
	h := slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	return &Server{log: slog.New(requestIDHandler{h}), metrics: newMetrics(prometheus.NewRegistry())}, logs
}

func requestsCounted(s *Server, handler string, status int) float64 {
	var m dto.Metric
	if err := s.metrics.requests.WithLabelValues(handler, fmt.Sprint(status)).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// A client that hangs up mid-request is not a server failure: it is
// counted as 499, logged at debug level only, and nothing is written.
func TestAdapter_ClientHungUp_Counted499AtDebugLevel(t *testing.T) {
	s, logs := adapterServer()
	ctx, cancel := context.WithCancel(context.Background())
	h := s.handle("introspect", func(w http.ResponseWriter, r *http.Request) error {
		cancel() // the client goes away while the store is being read
		return latch.WithCause(latch.Errorf(latch.EINTERNAL, "sqlite: token: %v", context.Canceled), context.Canceled)
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/oauth2/introspect", nil).WithContext(ctx))

	if rec.Body.Len() != 0 {
		t.Errorf("wrote %q to a client that is gone", rec.Body.String())
	}
	if got := requestsCounted(s, "introspect", StatusClientClosedRequest); got != 1 {
		t.Errorf("requests counted as 499 = %v, want 1", got)
	}
	if got := requestsCounted(s, "introspect", 500); got != 0 {
		t.Errorf("requests counted as 500 = %v, want 0", got)
	}
	for _, l := range logs.lines(t) {
		if l["level"] != "DEBUG" {
			t.Errorf("logged above debug level for a hung-up client: %v", l)
		}
	}
}

// An error returned after the handler started its response is logged,
// never written into the response it would corrupt.
func TestAdapter_ErrorAfterResponseStarted_NotWritten(t *testing.T) {
	s, logs := adapterServer()
	h := s.handle("revocations", func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "event: one\n\n")
		return errors.New("store: connection lost")
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/oauth2/revocations", nil))
	if got := rec.Body.String(); got != "event: one\n\n" {
		t.Errorf("body = %q, want only what the handler wrote", got)
	}
	var found bool
	for _, l := range logs.lines(t) {
		if l["msg"] == "request failed after its response started" && l["level"] == "ERROR" {
			found = true
		}
	}
	if !found {
		t.Errorf("no error logged for the failure after the response started: %v", logs.lines(t))
	}
}

// A panic is logged with its stack and the request ID, and the client
// gets a 500 naming the same request ID in the header and the body.
func TestAdapter_Panic_LoggedWithStack_500NamesRequestID(t *testing.T) {
	s, logs := adapterServer()
	h := s.handle("token", func(w http.ResponseWriter, r *http.Request) error {
		var m map[string]int
		m["boom"]++ // a nil map: a bug
		return nil
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/oauth2/token", nil))
	id := rec.Header().Get(HeaderRequestID)
	if rec.Code != 500 || id == "" || !strings.Contains(rec.Body.String(), "request "+id) {
		t.Fatalf("answer %d, %s=%q, body %s: want 500 naming the request ID", rec.Code, HeaderRequestID, id, rec.Body)
	}
	var found bool
	for _, l := range logs.lines(t) {
		if l["msg"] == "panic in handler" {
			found = true
			if l["request_id"] != id || !strings.Contains(fmt.Sprint(l["stack"]), "goroutine") {
				t.Errorf("panic log line %v: want request_id %q and a stack", l, id)
			}
		}
	}
	if !found {
		t.Error("the panic was not logged")
	}
}

// http.ErrAbortHandler is a handler's deliberate way to drop the
// connection: it goes through to net/http, neither logged nor answered.
func TestAdapter_ErrAbortHandler_PassesThrough(t *testing.T) {
	s, logs := adapterServer()
	h := s.handle("revocations", func(w http.ResponseWriter, r *http.Request) error {
		panic(http.ErrAbortHandler)
	})
	defer func() {
		if p := recover(); p != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", p)
		}
		for _, l := range logs.lines(t) {
			if l["level"] == "ERROR" {
				t.Errorf("ErrAbortHandler logged as an error: %v", l)
			}
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/oauth2/revocations", nil))
}

// Every request gets its own ID, in the response header and in every log
// line written with the request's context.
func TestAdapter_RequestID_InHeaderAndEveryLogLine(t *testing.T) {
	s, logs := adapterServer()
	h := s.handle("token", func(w http.ResponseWriter, r *http.Request) error {
		s.log.WarnContext(r.Context(), "something worth a line")
		if RequestID(r.Context()) != w.Header().Get(HeaderRequestID) {
			t.Errorf("context ID %q, header %q", RequestID(r.Context()), w.Header().Get(HeaderRequestID))
		}
		return nil
	})
	ids := map[string]bool{}
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/oauth2/token", nil))
		ids[rec.Header().Get(HeaderRequestID)] = true
	}
	if len(ids) != 3 || ids[""] {
		t.Fatalf("request IDs %v: want 3 distinct", ids)
	}
	for _, l := range logs.lines(t) {
		if id, _ := l["request_id"].(string); !ids[id] {
			t.Errorf("log line without the request's ID: %v", l)
		}
	}
}

// Each route group renders errors its own way, chosen at registration:
// the same failure is OAuth JSON on an OAuth endpoint, a problem detail on
// the admin API and an HTML page for a browser, each naming the request.
func TestAdapter_RendererChosenPerRouteGroup(t *testing.T) {
	s, _ := adapterServer()
	fail := func(w http.ResponseWriter, r *http.Request) error { return errors.New("store: disk on fire") }
	cases := []struct {
		name, contentType string
		h                 http.Handler
	}{
		{"oauth", "application/json", s.handle("token", fail)},
		{"admin", "application/problem+json", s.adapt("admin_clients", renderProblem, fail)},
		{"page", "text/html; charset=utf-8", s.page("login", fail)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			// Every group sees the same path: the renderer must not be
			// chosen by looking at it.
			tc.h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/v1/clients", nil))
			id := rec.Header().Get(HeaderRequestID)
			if rec.Code != 500 || rec.Header().Get("Content-Type") != tc.contentType {
				t.Errorf("answer %d %q, want 500 %q", rec.Code, rec.Header().Get("Content-Type"), tc.contentType)
			}
			if id == "" || !strings.Contains(rec.Body.String(), id) {
				t.Errorf("body %s does not name request %q", rec.Body, id)
			}
			if strings.Contains(rec.Body.String(), "disk on fire") {
				t.Errorf("body %s reveals the internal error", rec.Body)
			}
		})
	}
}
