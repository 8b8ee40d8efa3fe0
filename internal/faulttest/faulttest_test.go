package faulttest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgres_StopPauseResume checks the helpers do what the suite
// relies on: a query works through the proxy, a paused server answers
// nothing, a resumed or restarted one answers again, committed rows stay.
func TestPostgres_StopPauseResume(t *testing.T) {
	Require(t)
	pg := StartPostgres(t)
	px := StartProxy(t, "127.0.0.1:"+strconv.Itoa(pg.Port))
	query := func(url string, d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		_, err = c.Exec(ctx, "CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
		return err
	}
	if err := query(pg.URLAt(px.Port), 5*time.Second); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	pg.Pause()
	if err := query(pg.URL(), time.Second); err == nil {
		t.Fatal("a paused server answered")
	}
	pg.Resume()
	if err := query(pg.URL(), 5*time.Second); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	pg.StopFast()
	if err := query(pg.URL(), time.Second); err == nil {
		t.Fatal("a stopped server answered")
	}
	pg.Start()
	if err := query(pg.URL(), 5*time.Second); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

func TestRedis_RestartEmptyAndPause(t *testing.T) {
	Require(t)
	r := StartRedis(t)
	r.Pause()
	if err := ping(r.Port); err == nil {
		t.Fatal("a paused redis answered")
	}
	r.Resume()
	if err := ping(r.Port); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := ping(r.Port); err == nil {
		t.Fatal("a stopped redis answered")
	}
	r.Start()
	if err := ping(r.Port); err != nil {
		t.Fatal(err)
	}
}
