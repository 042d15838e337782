package spool

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is where the spool lives, how hard it syncs and how big it may
// grow. Zero values mean the defaults, which Open fills in.
type Config struct {
	// Dir holds the segment files, the ack file and the lock file. The
	// daemon sets it to <state_dir>/spool unless the operator names one.
	Dir string `yaml:"dir"`
	// Fsync is "always" (the default: Append returns only after
	// fdatasync, so a power cut loses nothing that was acknowledged) or a
	// duration like "1s" for SD cards that wear out or stall under
	// constant syncing. With a duration, Append returns once the record
	// is in the kernel (it survives kill -9) and the files are synced
	// every interval: a power cut can lose the records acknowledged in
	// the last interval before it, and re-deliver records acked in that
	// interval.
	Fsync string `yaml:"fsync"`
	// CommitDelay is how long, with fsync=always, a group commit waits
	// for more records once two or more appends are waiting, or, for a
	// single one, while a stream of concurrent appends flows fast enough
	// that another is due within the delay, before it writes and syncs
	// them: a duration up to 100ms, or "0" for none (default "5ms"). An
	// fsync costs about as much CPU for one record as for thirty; without
	// the wait a steady stream commits every record or two, and its CPU
	// per record follows how quick the disk's fsyncs happen to be. A
	// lone appender and a stream slower than one record per delay never
	// wait, and the wait ends as soon as commitGroup records have
	// gathered.
	CommitDelay string `yaml:"commit_delay"`
	// MaxBytes bounds the spool's files on disk (default 1 GiB). Beyond
	// it the oldest segment is dropped, unacked records and all, so the
	// newest readings keep flowing; each drop is logged and counted.
	MaxBytes int64 `yaml:"max_bytes"`
	// SegmentBytes is the size at which the spool starts a new segment
	// file (default 16 MiB, or MaxBytes/8 when that is smaller). It is
	// also the unit of deletion and of dropping, and the largest record
	// Append accepts.
	SegmentBytes int64 `yaml:"segment_bytes"`
}

// Defaults and limits.
const (
	FsyncAlways         = "always"
	DefaultCommitDelay  = "5ms"
	maxCommitDelay      = 100 * time.Millisecond
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 16 << 20
	// MinSegmentBytes keeps segments large enough that the header and
	// rotation cost stay negligible.
	MinSegmentBytes = 4 << 10
	// MaxSegmentBytes keeps record lengths within the header's 32 bits
	// and the tail scan on Open short.
	MaxSegmentBytes = 1 << 30
)

// withDefaults fills in the zero values.
func (c Config) withDefaults() Config {
	c.Fsync = cmp.Or(c.Fsync, FsyncAlways)
	c.CommitDelay = cmp.Or(c.CommitDelay, DefaultCommitDelay)
	c.MaxBytes = cmp.Or(c.MaxBytes, DefaultMaxBytes)
	if c.SegmentBytes == 0 {
		c.SegmentBytes = min(DefaultSegmentBytes, c.MaxBytes/8)
		c.SegmentBytes = max(c.SegmentBytes, MinSegmentBytes)
	}
	return c
}

// Validate reports every problem at once, each naming the setting to fix.
// Zero values are valid: they mean the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if strings.TrimSpace(c.Dir) == "" {
		errs = append(errs, errors.New("spool: dir is empty: set spool.dir or state_dir"))
	}
	if _, err := c.syncInterval(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.commitDelay(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("spool: max_bytes %d is negative: set a positive spool.max_bytes or leave it out for %d", c.MaxBytes, DefaultMaxBytes))
	}
	if c.SegmentBytes < MinSegmentBytes || c.SegmentBytes > MaxSegmentBytes {
		errs = append(errs, fmt.Errorf("spool: segment_bytes %d is outside %d..%d: fix spool.segment_bytes or leave it out for %d", c.SegmentBytes, MinSegmentBytes, MaxSegmentBytes, DefaultSegmentBytes))
	}
	if c.MaxBytes >= 0 && c.MaxBytes < 2*c.SegmentBytes {
		errs = append(errs, fmt.Errorf("spool: max_bytes %d is less than two segments of %d bytes: raise spool.max_bytes or lower spool.segment_bytes", c.MaxBytes, c.SegmentBytes))
	}
	return errors.Join(errs...)
}

// syncInterval returns 0 for "always", else the fsync interval.
func (c Config) syncInterval() (time.Duration, error) {
	if c.Fsync == FsyncAlways {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Fsync)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("spool: fsync %q is neither %q nor a positive duration like \"1s\": fix spool.fsync", c.Fsync, FsyncAlways)
	}
	return d, nil
}

// commitDelay returns the parsed CommitDelay; 0 is none.
func (c Config) commitDelay() (time.Duration, error) {
	if c.CommitDelay == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.CommitDelay)
	if err != nil || d < 0 || d > maxCommitDelay {
		return 0, fmt.Errorf("spool: commit_delay %q is not a duration from 0 to %v like \"5ms\": fix spool.commit_delay", c.CommitDelay, maxCommitDelay)
	}
	return d, nil
}
