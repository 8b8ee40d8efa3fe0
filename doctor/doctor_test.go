package doctor

import (
	"testing"
	"time"
)

// The checks that need what a test cannot plant in a real system (a
// network filesystem, a skewed database clock, a non-loopback server)
// are fed a snapshot; the others run against real stores in
// cmd/latch/doctor_e2e_test.go.

func base() *Snapshot {
	return &Snapshot{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Issuer: "https://auth.example.com",
		AccessTokenTTL: 10 * time.Minute, RefreshTokenTTL: 14 * 24 * time.Hour, FamilyMaxAge: 30 * 24 * time.Hour,
		RefreshGrace: 10 * time.Second, PrePublish: time.Hour, JWKSCacheTime: 15 * time.Minute, MinPasswordLen: 15,
		Backup: &Backup{At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
}

func only(t *testing.T, s *Snapshot, id string, sev Severity, code int) {
	t.Helper()
	fs := Check(s)
	if len(fs) != 1 || fs[0].ID != id || fs[0].Severity != sev || Code(fs) != code {
		t.Fatalf("want one %s %s (code %d), got %+v", sev, id, code, fs)
	}
}

func TestCheck_BaseIsClean(t *testing.T) {
	if fs := Check(base()); len(fs) != 0 {
		t.Fatalf("%+v", fs)
	}
}

func TestCheck_SQLiteNetworkFS(t *testing.T) {
	s := base()
	s.SQLite = &SQLiteFile{Path: "/mnt/nfs/latch.db", JournalMode: "wal", FSType: "nfs", Network: true}
	only(t, s, "SQLITE_NETWORK_FS", High, 2)
}

func TestCheck_ClockSkew(t *testing.T) {
	s := base()
	s.DBTime = s.Now.Add(-10 * time.Second)
	only(t, s, "CLOCK_SKEW", Warning, 1)
	s.DBTime = s.Now.Add(2 * time.Minute)
	only(t, s, "CLOCK_SKEW", High, 2)
	s.DBTime = s.Now.Add(time.Second)
	if fs := Check(s); len(fs) != 0 {
		t.Fatalf("1s skew: %+v", fs)
	}
}

func TestCheck_ProbeExposed(t *testing.T) {
	s := base()
	s.Probe = &Probe{URL: "http://auth.example.com", Issuer: s.Issuer, MetricsStatus: 200}
	fs := Check(s)
	if len(fs) != 2 || fs[0].ID != "PROBE_HTTP" || fs[1].ID != "METRICS_EXPOSED" || Code(fs) != 2 {
		t.Fatalf("%+v", fs)
	}
	s.Probe = &Probe{URL: "https://auth.example.com", Issuer: s.Issuer, MetricsStatus: 404}
	if fs := Check(s); len(fs) != 0 {
		t.Fatalf("https, /metrics closed: %+v", fs)
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		sevs []Severity
		want int
	}{{nil, 0}, {[]Severity{Info}, 0}, {[]Severity{Info, Warning}, 1}, {[]Severity{Warning, High, Info}, 2}} {
		var fs []Finding
		for _, s := range c.sevs {
			fs = append(fs, Finding{Severity: s})
		}
		if got := Code(fs); got != c.want {
			t.Errorf("Code(%v) = %d, want %d", c.sevs, got, c.want)
		}
	}
}
