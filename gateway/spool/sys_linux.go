package spool

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync flushes f's data and the metadata needed to read it back (its
// size), skipping timestamps: all a record needs to survive a power cut.
func fdatasync(f *os.File) error {
	return onFD(f, func(fd int) error {
		for {
			err := syscall.Fdatasync(fd)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	})
}

// onFD calls fn with f's descriptor and returns what fn returns, or why
// the descriptor could not be had.
func onFD(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// syncDir makes created, renamed and removed names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// errLocked reports that another process holds the directory lock.
var errLocked = errors.New("locked")

// lockFile takes an exclusive advisory lock on f without waiting; the
// kernel drops it when the process dies, so kill -9 leaves no stale lock.
func lockFile(f *os.File) error {
	return onFD(f, func(fd int) error {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == syscall.EWOULDBLOCK {
			return errLocked
		}
		return err
	})
}
