//go:build !linux

package testserver

// listensOn cannot tell whose socket it is without /proc; it trusts the
// connection check that ran before it.
func listensOn(pid, port int) (bool, error) { return true, nil }
