package sqlite

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/latch-auth/latch"
)

// Commit, then sync beside the next batch.
//
// With synchronous=FULL the COMMIT of a batch returns only after the WAL's
// fsync, and the committer waits for it doing nothing: the writes queued
// meanwhile start executing only after the disk answered. Instead the
// committer runs each batch's transaction with synchronous=NORMAL (the
// COMMIT writes the WAL frames and returns) and hands the batch to the
// syncer goroutine, which fsyncs the WAL file and only then answers the
// batch's callers; meanwhile the committer already executes the next
// batch. The committer keeps its next transaction open, adding the writes
// that arrive, until the syncer is free again: one batch is being synced
// while the next executes, and each fsync covers all the writes gathered
// during the one before. What a
// caller is told is unchanged: nil only after its write's frames are on
// disk.
//
// The data of a committed, not yet synced batch is visible to readers
// before its callers are answered, as it is between any COMMIT and the
// moment its answer reaches the client; no one holds the tokens it
// created until then. Checkpoints sync the WAL themselves before copying
// it (SQLite does so at synchronous=NORMAL too), so a checkpoint never
// makes unsynced frames the database's.
//
// A failed fsync cannot be retried: Linux may have dropped the dirty pages
// and marked them clean, so a later fsync would succeed over a hole in the
// WAL, and recovery stops at the first frame whose checksum breaks: writes
// acknowledged after the hole would be lost. After one failure every
// write is refused (EUNAVAILABLE) until the process restarts and SQLite
// recovers the WAL from what is on disk.

// synced is a committed batch waiting for the fsync of the WAL.
type synced struct {
	ws   []*write
	errs []error
}

// walSyncer is the state of the syncer goroutine.
type walSyncer struct {
	path    string
	batches chan synced
	free    chan struct{} // the token: held from a batch's COMMIT to its fsync's end
	done    chan struct{}
	broken  atomic.Pointer[error] // the fsync error that stops all writes
	f       *os.File              // the WAL, opened at the first sync
	fi      os.FileInfo           // f's identity, to notice a new WAL file
}

func (db *DB) startSyncer() {
	db.syncer = &walSyncer{path: db.path + "-wal", batches: make(chan synced, 1),
		free: make(chan struct{}, 1), done: make(chan struct{})}
	db.syncer.free <- struct{}{}
	go db.syncer.loop()
}

// stopSyncer answers the batches still pending and stops; the committer
// has stopped already.
func (db *DB) stopSyncer() {
	if db.syncer == nil {
		return
	}
	close(db.syncer.batches)
	<-db.syncer.done
	if db.syncer.f != nil {
		db.syncer.f.Close()
	}
}

// brokenErr returns the error writes are refused with after a failed
// fsync, or nil.
func (s *walSyncer) brokenErr() error {
	if s == nil {
		return nil
	}
	if p := s.broken.Load(); p != nil {
		return latch.WithCause(latch.Errorf(latch.EUNAVAILABLE,
			"sqlite: writes are refused since the WAL could not be synced (%v); restart latch to recover it", *p), *p)
	}
	return nil
}

func (s *walSyncer) loop() {
	defer close(s.done)
	for b := range s.batches {
		err := s.brokenErr()
		if err == nil {
			if serr := s.sync(); serr != nil {
				s.broken.CompareAndSwap(nil, &serr)
				err = s.brokenErr()
			}
		}
		for i, w := range b.ws {
			if err != nil && b.errs[i] == nil {
				b.errs[i] = latch.WithCause(latch.Errorf(latch.EUNAVAILABLE,
					"sqlite: %s: committed but not made durable, so not acknowledged: %v", w.op, err), err)
			}
			w.done <- b.errs[i]
		}
		s.free <- struct{}{}
	}
}

// sync fsyncs the WAL file that is at path now. SQLite deletes the WAL
// only when its last connection closes, after copying it into the
// database file and syncing that; a WAL found under another identity is
// a new one, and the frames just committed are in it.
func (s *walSyncer) sync() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("stat the WAL: %w", err)
	}
	if s.f == nil || !os.SameFile(s.fi, fi) {
		if s.f != nil {
			s.f.Close()
			s.f = nil
		}
		f, err := os.OpenFile(s.path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open the WAL: %w", err)
		}
		ffi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("stat the WAL: %w", err)
		}
		s.f, s.fi = f, ffi
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync the WAL: %w", err)
	}
	return nil
}
