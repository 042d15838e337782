package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// gatedConn counts the writes that reach the connection; the first one
// waits for release, as a write the kernel is slow to take.
type gatedConn struct {
	net.Conn
	entered chan struct{} // closed when the first write began
	release chan struct{}
	fail    error // returned by every write, if set

	mu     sync.Mutex
	writes int
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	first := c.writes == 1
	c.mu.Unlock()
	if first {
		close(c.entered)
		<-c.release
	}
	if c.fail != nil {
		return 0, c.fail
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestCoalescedWrites: packets written while a write is under way leave
// together in the next one, in order, and Close sends what is pending
// before closing (paho closes right after writing DISCONNECT).
func TestCoalescedWrites(t *testing.T) {
	tests := []struct {
		name    string
		packets int
		// wantWrites reach the connection: the first packet alone, then
		// everything written while it was held.
		wantWrites int
	}{
		{"one packet", 1, 1},
		{"two packets", 2, 2},
		{"a commit's acknowledgements", 100, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			gc := &gatedConn{Conn: client, entered: make(chan struct{}), release: make(chan struct{})}
			conn := newBufferedConn(gc)
			var want []byte
			for i := range tt.packets {
				puback := []byte{0x40, 0x02, byte(i >> 8), byte(i)}
				want = append(want, puback...)
				if n, err := conn.Write(puback); err != nil || n != len(puback) {
					t.Fatalf("Write = %d, %v", n, err)
				}
				if i == 0 {
					<-gc.entered // the first write holds the connection
				}
			}
			close(gc.release)
			if err := conn.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(server)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the peer read % x, want % x", got, want)
			}
			if n := gc.count(); n != tt.wantWrites {
				t.Errorf("%d writes reached the connection, want %d", n, tt.wantWrites)
			}
			if _, err := conn.Write([]byte{0xc0, 0}); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after Close = %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestCoalescedWriteError: a failed write closes the connection, so a
// reader (paho's) sees the loss, and later Writes report the error.
func TestCoalescedWriteError(t *testing.T) {
	client, _ := tcpPair(t)
	broken := errors.New("connection reset by peer")
	gc := &gatedConn{Conn: client, entered: make(chan struct{}), release: make(chan struct{}), fail: broken}
	close(gc.release)
	conn := newBufferedConn(gc)
	if _, err := conn.Write([]byte{0x40, 0x02, 0, 1}); err != nil {
		t.Fatalf("first Write = %v: it only queues", err)
	}
	// The reader returns once the writer closed the connection.
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after the failed write = %v, want net.ErrClosed", err)
	}
	if _, err := conn.Write([]byte{0x40, 0x02, 0, 2}); !errors.Is(err, broken) {
		t.Errorf("Write after the failed write = %v, want %v", err, broken)
	}
	if err := conn.Close(); err == nil {
		t.Error("Close of the closed connection = nil, want the close error")
	}
}
