//go:build !unix

package deadletter

import "os"

// lock is a no-op off Unix: sensorgate's supported target is Linux.
func lock(*os.File) (held bool, err error) { return false, nil }
