//go:build unix

package script

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the test process has used, user and system. On
// a box shared with other work, CPU per decode is steadier than wall time
// per decode, which includes the time other processes hold the cores.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
