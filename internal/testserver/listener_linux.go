package testserver

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// listensOn reports whether process pid holds the socket listening on
// the IPv4 TCP port. A server that failed to bind because another test's
// server took its port can look ready to a mere connection check; this
// tells the two apart by the socket's inode (/proc/net/tcp) and the
// process's descriptors.
func listensOn(pid, port int) (bool, error) {
	inode, err := listenInode(port)
	if err != nil || inode == "" {
		return false, err
	}
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return false, err
	}
	want := "socket:[" + inode + "]"
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == want {
			return true, nil
		}
	}
	return false, nil
}

// listenInode returns the inode of the socket in state LISTEN on the
// port, or "" when there is none.
func listenInode(port int) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	suffix := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || !strings.HasSuffix(fields[1], suffix) || fields[3] != "0A" {
			continue
		}
		if _, err := strconv.ParseUint(fields[9], 10, 64); err == nil {
			return fields[9], nil
		}
	}
	return "", sc.Err()
}
