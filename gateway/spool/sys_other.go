//go:build !linux

package spool

import (
	"errors"
	"os"
)

// fdatasync falls back to a full fsync where fdatasync is not exposed.
func fdatasync(f *os.File) error { return f.Sync() }

// syncDir makes created and removed names in dir durable where the
// platform allows syncing a directory; elsewhere it is a no-op.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	_ = d.Sync() // not supported for directories on every platform
	return d.Close()
}

// errLocked reports that another process holds the directory lock.
var errLocked = errors.New("locked")

// lockFile is a no-op off Linux: sensorgate's supported target is Linux,
// where the lock keeps two daemons from sharing one spool.
func lockFile(*os.File) error { return nil }
