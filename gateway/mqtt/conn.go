package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"

	"github.com/sensorgate/sensorgate/gateway/tlsconfig"
)

// readBufferSize is the read buffer of a broker connection: a few dozen
// typical uplinks per read system call during a backlog.
const readBufferSize = 32 << 10

// closeFlushTimeout bounds how long closing a connection waits for the
// bytes paho wrote last (a DISCONNECT, final acknowledgements) to leave.
const closeFlushTimeout = time.Second

// openBuffered dials a broker over TCP as paho does (through a proxy
// named by ALL_PROXY, if any), does the TLS handshake for a TLS scheme
// with o.TLSConfig, and buffers what is read and what is written.
//
// Reads: paho reads a packet straight from the connection in three or
// four reads (type byte, each length byte, body), a system call each;
// through the buffer a backlog costs one per readBufferSize.
//
// Writes: paho writes each packet with its own write system call, and
// during a backlog almost every packet is a PUBACK, four bytes. The
// acknowledgements of one spool commit (dozens of messages made durable
// by one fsync) reach paho's writer together, one after the other; see
// coalescingWriter for how they leave in a few writes instead of one
// each.
func openBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: connectTimeout}
	}
	conn, err := proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	if tlsconfig.Scheme(uri.Scheme) {
		tc := o.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: uri.Hostname()}
		}
		tconn := tls.Client(conn, tc)
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", uri.Host, err)
		}
		conn = tconn
	}
	return newBufferedConn(conn), nil
}

// bufferedConn is a connection whose reads go through a buffer and whose
// writes are coalesced.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
	w *coalescingWriter
}

func newBufferedConn(conn net.Conn) *bufferedConn {
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), w: newCoalescingWriter(conn)}
}

func (c *bufferedConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *bufferedConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close sends what was written (within closeFlushTimeout), then closes:
// paho closes right after writing DISCONNECT.
func (c *bufferedConn) Close() error {
	c.w.close()
	return c.Conn.Close()
}

// coalescingWriter hands writes to a goroutine of its own, which writes
// everything pending with one system call. Write only appends to the
// pending bytes, so while that goroutine is in a write, the packets paho
// writes meanwhile gather and leave together with the next. Nothing waits
// for a timer: a packet written on an idle connection leaves at once, and
// bytes keep their order.
//
// A failed write closes the connection, so paho's reader sees the loss
// (as it would had the write failed in paho), and later Writes return the
// error.
type coalescingWriter struct {
	conn net.Conn
	kick chan struct{} // a write is pending; capacity 1
	stop chan struct{} // closed by close
	done chan struct{} // closed when run has returned

	mu      sync.Mutex
	pending []byte
	spare   []byte // the buffer last written, reused for the next pending bytes
	err     error  // sticky: the first write error, or net.ErrClosed
	closed  bool
}

func newCoalescingWriter(conn net.Conn) *coalescingWriter {
	w := &coalescingWriter{conn: conn, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues p and returns; the bytes leave as soon as the writer
// goroutine gets to them.
func (w *coalescingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // a wake-up is pending already; it takes these bytes too
	}
	return len(p), nil
}

func (w *coalescingWriter) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
			// Let the goroutines made runnable with the packet that woke
			// us run first: the workers whose messages the same spool
			// commit made durable are about to acknowledge theirs. Woken
			// by paho's writer, this goroutine would otherwise run next on
			// its P and write that one packet alone (in a backlog drain
			// with ~15 messages per commit: 1.07 write calls per message
			// without, 0.14 with).
			runtime.Gosched()
			w.flush()
		case <-w.stop:
			w.flush()
			return
		}
	}
}

// flush writes everything pending, in as many writes as it takes for
// nothing to be left (each write takes what gathered during the last).
func (w *coalescingWriter) flush() {
	for {
		w.mu.Lock()
		b := w.pending
		if len(b) == 0 || w.err != nil {
			w.mu.Unlock()
			return
		}
		w.pending = w.spare[:0]
		w.mu.Unlock()

		_, err := w.conn.Write(b)

		w.mu.Lock()
		w.spare = b[:0]
		if err != nil && w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
		if err != nil {
			_ = w.conn.Close()
			return
		}
	}
}

// close writes what is pending, waiting at most closeFlushTimeout, and
// stops the writer goroutine. Later Writes fail with net.ErrClosed.
func (w *coalescingWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	w.mu.Unlock()
	// Also ends a write in progress that a stalled broker does not take.
	_ = w.conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	close(w.stop)
	<-w.done
	w.mu.Lock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.mu.Unlock()
}
