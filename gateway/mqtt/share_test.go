package mqtt

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// countingHandler counts uplinks per deduplication id across sources.
type countingHandler struct {
	mu   sync.Mutex
	seen map[string]int // deduplication id → times handled
	per  map[string]int // source client id → uplinks handled
}

func (c *countingHandler) forSource(id string) gateway.Handler {
	return func(_ context.Context, up gateway.Uplink) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.seen[up.ID]++
		c.per[id]++
		return nil
	}
}

func (c *countingHandler) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.seen {
		n += k
	}
	return n
}

// TestShareGroupSplitsFeed: two sources with one share_group and their own
// client ids on a real Mosquitto split the feed: every message is handled
// exactly once, and each source handles some. One source then stops (a
// clean shutdown keeps its persistent session): Mosquitto goes on routing
// that session's share to it, and the share arrives when the instance
// comes back under the same client id, which is why the README tells the
// operator to restart a stopped instance with its client id.
func TestShareGroupSplitsFeed(t *testing.T) {
	broker := testserver.StartMosquitto(t)
	h := &countingHandler{seen: map[string]int{}, per: map[string]int{}}
	share := func(c *Config) { c.ShareGroup = "sensorgate" }
	a := newTestSource(t, broker.URL(), "share-a", &memDeadLetters{}, share)
	stopA := startRun(t, a, h.forSource("a"))
	b := newTestSource(t, broker.URL(), "share-b", &memDeadLetters{}, share)
	stopB := startRun(t, b, h.forSource("b"))

	pub := publisher(t, broker.URL())
	const n = 200
	for i := range n {
		topic, payload, _ := v4Message(i)
		publish(t, pub, topic, payload)
	}
	waitFor(t, 20*time.Second, "every message handled", func() bool { return h.total() >= n })
	h.mu.Lock()
	if len(h.seen) != n || h.per["a"] == 0 || h.per["b"] == 0 || h.per["a"]+h.per["b"] != n {
		t.Fatalf("distinct %d of %d, a handled %d, b handled %d: want each message once, split between both", len(h.seen), n, h.per["a"], h.per["b"])
	}
	h.mu.Unlock()

	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	for i := n; i < 2*n; i++ {
		topic, payload, _ := v4Message(i)
		publish(t, pub, topic, payload)
	}
	// b's share waits in its session; a gets only its own share.
	waitFor(t, 20*time.Second, "a's share of the second batch", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.per["a"] > 0 && len(h.seen) > n
	})
	b2 := newTestSource(t, broker.URL(), "share-b", &memDeadLetters{}, share)
	stopB2 := startRun(t, b2, h.forSource("b"))
	waitFor(t, 20*time.Second, "every message of the second batch after b came back", func() bool { return h.total() >= 2*n })
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	if err := stopB2(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, k := range h.seen {
		if k != 1 {
			t.Errorf("message %s handled %d times, want once", id, k)
		}
	}
	if len(h.seen) != 2*n {
		t.Fatalf("%d distinct messages handled, want %d", len(h.seen), 2*n)
	}
}
