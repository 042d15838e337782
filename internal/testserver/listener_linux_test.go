package testserver

import (
	"net"
	"os"
	"testing"
)

// TestListensOn tells a listener of this process from another process's
// and from a port nobody listens on.
func TestListensOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	m := StartMosquitto(t)
	for _, tt := range []struct {
		name      string
		pid, port int
		want      bool
	}{
		{"own listener", os.Getpid(), port, true},
		{"another process's listener", m.PID(), port, false},
		{"the broker's own port", m.PID(), m.Port, true},
		{"nobody listens", os.Getpid(), FreePort(t), false},
	} {
		got, err := listensOn(tt.pid, tt.port)
		if err != nil || got != tt.want {
			t.Errorf("%s: listensOn(%d, %d) = %v, %v; want %v", tt.name, tt.pid, tt.port, got, err, tt.want)
		}
	}
}

// TestFreePortNeverRepeats: a port handed out once is not handed out
// again, even after whoever used it let it go.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
