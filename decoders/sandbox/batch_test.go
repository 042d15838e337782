package sandbox

import (
	"errors"

	"fmt"
	"github.com/sensorgate/sensorgate/decoders/script"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/decoders"
)

// echoCodec returns its first byte; a first byte of 0xff runs a regular
// expression that backtracks for ages past goja's interrupt, so its
// worker is killed; 0xfe loops until goja's interrupt stops it.
const echoCodec = `function decodeUplink(input) {
  if (input.bytes[0] === 0xfe) {
    for (;;) {}
  }
  if (input.bytes[0] === 0xff) {
    var s = new Array(40).join("a") + "!";
    return { data: { n: /^(a+)+(?=b)$/.test(s) ? 1 : 0 } };
  }
  return { data: { n: input.bytes[0] } };
}`

func loadSource(t *testing.T, p *Pool, name, src string) *Codec {
	t.Helper()
	c, err := p.Load(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// await polls cond until it holds, failing after ten seconds.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (c *Codec) queued() int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return len(c.queue)
}

// holdSlots takes every free slot, so calls queue until release.
func holdSlots(p *Pool) (release func()) {
	var held []*slot
	for range p.cfg.Workers {
		held = append(held, <-p.idle)
	}
	return func() {
		for _, s := range held {
			p.release(s)
		}
	}
}

type outcome struct {
	n   float64
	err error
}

// decodeAsync queues one call of c with payload b and waits until it is
// in c's queue, so calls queue in the order they are made.
func decodeAsync(t *testing.T, c *Codec, b byte, out chan<- outcome) {
	t.Helper()
	before := c.queued()
	go func() {
		res, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{b}})
		o := outcome{err: err}
		if err == nil {
			v, _ := res.DataMap()["n"].(float64)
			o.n = v
			res.Record.Release()
		}
		out <- o
	}()
	await(t, "the call to queue", func() bool { return c.queued() > before })
}

// TestBatchDecodesEachCall: calls of one codec that queue while the
// worker is busy go to it in batches, and each gets its own uplink's
// result.
func TestBatchDecodesEachCall(t *testing.T) {
	p := newPool(t, Config{Workers: 1})
	c := loadSource(t, p, "echo.js", echoCodec)
	if _, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{1}}); err != nil {
		t.Fatal(err) // proves the codec: its calls batch from now on
	}
	release := holdSlots(p)
	const n = 40
	outs := make([]chan outcome, n)
	for i := range n {
		outs[i] = make(chan outcome, 1)
		decodeAsync(t, c, byte(i), outs[i])
	}
	release()
	for i := range n {
		o := <-outs[i]
		if o.err != nil || o.n != float64(i) {
			t.Errorf("call %d: n=%v err=%v, want n=%d", i, o.n, o.err, i)
		}
	}
	if p.batches.Load() == 0 {
		t.Error("no batch was sent")
	}
	if c.queued() != 0 {
		t.Errorf("%d calls left in the queue", c.queued())
	}
}

// TestBatchKillFailsOnlyItsCalls: a call that gets its worker killed in
// a batch fails with the calls after it in that batch, each with an
// error of its own; the calls before it keep their results, and another
// codec's calls, queued at the same time, all decode.
func TestBatchKillFailsOnlyItsCalls(t *testing.T) {
	p := newPool(t, Config{Workers: 2})
	mixed := loadSource(t, p, "mixed.js", echoCodec)
	good := loadSource(t, p, "good.js", echoCodec)
	for _, c := range []*Codec{mixed, good} {
		if _, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	release := holdSlots(p)
	payloads := []byte{1, 2, 3, 0xff, 5, 6}
	mixedOut := make([]chan outcome, len(payloads))
	for i, b := range payloads {
		mixedOut[i] = make(chan outcome, 1)
		decodeAsync(t, mixed, b, mixedOut[i])
	}
	goodOut := make([]chan outcome, 6)
	for i := range goodOut {
		goodOut[i] = make(chan outcome, 1)
		decodeAsync(t, good, byte(10+i), goodOut[i])
	}
	release()
	for i, ch := range goodOut {
		if o := <-ch; o.err != nil || o.n != float64(10+i) {
			t.Errorf("good codec, call %d: n=%v err=%v", i, o.n, o.err)
		}
	}
	var failed []error
	for i, ch := range mixedOut {
		o := <-ch
		switch {
		case i < 3:
			if o.err != nil || o.n != float64(payloads[i]) {
				t.Errorf("mixed call %d before the hostile one: n=%v err=%v, want its result", i, o.n, o.err)
			}
		default:
			if !errors.Is(o.err, ErrKilled) {
				t.Errorf("mixed call %d: err=%v, want ErrKilled", i, o.err)
				continue
			}
			failed = append(failed, o.err)
		}
	}
	for i := range failed {
		for j := range i {
			if failed[i] == failed[j] {
				t.Errorf("calls %d and %d share one error value", i+3, j+3)
			}
		}
	}
	if st := p.Stats(); st.Killed[ReasonTimeout] != 1 {
		t.Errorf("killed for timeout %d times, want 1", st.Killed[ReasonTimeout])
	}
	// The codec is not to blame for the calls after the hostile one:
	// they decode once replayed.
	res, err := mixed.Decode(decoders.Input{FPort: 1, Bytes: []byte{7}})
	if err != nil {
		t.Fatalf("replayed call: %v", err)
	}
	if got := fmt.Sprint(res.DataMap()["n"]); got != "7" {
		t.Errorf("replayed call: n=%s", got)
	}
}

// TestNoBatchAfterScriptTimeout: a codec whose call ran into the
// in-worker limit is not batched for the next minute, so a batch of
// such calls, each taking the whole limit, cannot hold the last of them
// past a second.
func TestNoBatchAfterScriptTimeout(t *testing.T) {
	p := newPool(t, Config{Workers: 1})
	c := loadSource(t, p, "echo.js", echoCodec)
	if _, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if !c.batching() {
		t.Fatal("a proven codec is not batched")
	}
	if _, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{0xfe}}); !errors.Is(err, script.ErrTimeout) {
		t.Fatalf("looping call: %v, want script.ErrTimeout", err)
	}
	if c.batching() {
		t.Fatal("still batched after running into the in-worker limit")
	}
	release := holdSlots(p)
	var outs []chan outcome
	for i := range 4 {
		ch := make(chan outcome, 1)
		outs = append(outs, ch)
		go func() {
			res, err := c.Decode(decoders.Input{FPort: 1, Bytes: []byte{byte(i)}})
			o := outcome{err: err}
			if err == nil {
				o.n, _ = res.DataMap()["n"].(float64)
			}
			ch <- o
		}()
	}
	release()
	for i, ch := range outs {
		if o := <-ch; o.err != nil || o.n != float64(i) {
			t.Errorf("call %d: n=%v err=%v", i, o.n, o.err)
		}
	}
	if n := p.batches.Load(); n != 0 {
		t.Errorf("%d batches sent after the codec ran into its limit, want none", n)
	}
}
