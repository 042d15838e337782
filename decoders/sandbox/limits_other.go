//go:build !linux

package sandbox

// setLimits only sets the Go memory limit where RLIMIT_DATA is not
// available: the runtime then collects hard near the limit, but a codec
// can still allocate past it. The wall-clock limit still applies.
func setLimits(limit int64) error {
	setMemoryLimit(limit)
	return nil
}
