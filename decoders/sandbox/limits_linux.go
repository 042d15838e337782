package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// setLimits caps the worker's memory at limit bytes beyond what it maps
// now. RLIMIT_DATA counts private writable mappings (Linux 4.7 and
// later): the Go heap, as the runtime maps it in, but not the address
// space the runtime only reserves (PROT_NONE), so unlike RLIMIT_AS it
// does not trip over Go's large reservations. The runtime dies with
// "fatal error: runtime: out of memory" when a mapping is refused; the
// daemon sees the worker exit and replaces it.
func setLimits(limit int64) error {
	base, err := vmData()
	if err != nil {
		return err
	}
	setMemoryLimit(limit)
	// The collector works to stay under limit; the mapping limit sits a
	// little above it, so the allocation that breaks through is the
	// codec's (a clean "out of memory"), not the collector's own
	// bookkeeping, which the runtime does not survive as cleanly.
	max := uint64(base + limit + limit/4 + 8<<20)
	return syscall.Setrlimit(syscall.RLIMIT_DATA, &syscall.Rlimit{Cur: max, Max: max})
}

// vmData is the process's data segment size (VmData in
// /proc/self/status), in bytes.
func vmData() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmData:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmData %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmData in /proc/self/status")
}
