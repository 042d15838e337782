package script

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dop251/goja"
	"github.com/rs/zerolog"

	"github.com/sensorgate/sensorgate/decoders"
)

// freshOnly loads a codec whose calls all run on fresh runtimes: the
// reference a locked runtime must match.
func freshOnly(t testing.TB, path string) *Codec {
	t.Helper()
	c := mustLoad(t, path, relaxed)
	c.reuse = nil
	return c
}

// TestReuseCheck: the test codecs run on locked runtimes, and each
// construct the lock cannot cover keeps a codec on fresh runtimes.
func TestReuseCheck(t *testing.T) {
	for _, model := range []string{"elsys-ers-co2", "dragino-lht65", "milesight-em310-udl", "decentlab-dl-pm", "bench/cayenne-lpp", "behaviour/lock-probe"} {
		c := mustLoad(t, filepath.Join(codecsDir, model+".js"), relaxed)
		if ok, why := c.Reusable(); !ok {
			t.Errorf("%s: not reusable: %s", model, why)
		}
	}
	const entry = "function decodeUplink(input) { %s return {data: {}}; }"
	for _, tc := range []struct{ src, why string }{
		{fmt.Sprintf(entry, "var g = this;"), "this"},
		{fmt.Sprintf(entry, "var n = arguments.length;"), "arguments"},
		{fmt.Sprintf(entry, "eval('1');"), "eval"},
		{fmt.Sprintf(entry, `\u0065val('1');`), "eval"},
		{fmt.Sprintf(entry, "var f = Function('return 1');"), "Function"},
		{fmt.Sprintf(entry, "globalThis.x = 1;"), "globalThis"},
		{fmt.Sprintf(entry, "var o = {}; o.globalThis = 1;"), "globalThis"},
		{fmt.Sprintf(entry, "Reflect.set({}, 'a', 1);"), "Reflect"},
		{fmt.Sprintf(entry, "new Proxy({}, {});"), "Proxy"},
		{fmt.Sprintf(entry, "Promise.resolve(1);"), "Promise"},
		{fmt.Sprintf(entry, "Buffer.from([1]);"), "Buffer"},
		{fmt.Sprintf(entry, "try { x(); } catch (e) {}"), "try"},
		{fmt.Sprintf(entry, "with ({}) {}"), "with"},
		{fmt.Sprintf(entry, "if (input) { function inner() {} }"), "block"},
		{fmt.Sprintf(entry, "class K {}"), "class"},
		{fmt.Sprintf(entry, "var g = function* () {};"), "generator"},
		{fmt.Sprintf(entry, "var g = async function () {};"), "async"},
		{fmt.Sprintf(entry, "var g = async () => 1;"), "async"},
		{"var t = Date.now();" + fmt.Sprintf(entry, ""), "computes"},
		{"var m = new Map();" + fmt.Sprintf(entry, ""), "computes"},
		{"var t = (function () { var n = 0; return function () { return ++n; }; })();" + fmt.Sprintf(entry, ""), "computes"},
		{"var re = /a/g;" + fmt.Sprintf(entry, ""), "computes"},
		{"var o = {valueOf: function () { return 1; }}; var n = -o;" + fmt.Sprintf(entry, ""), "computes"},
		{"var o = {['k' + 1]: 1};" + fmt.Sprintf(entry, ""), "computes"},
		{"var p = Math.PI;" + fmt.Sprintf(entry, ""), "computes"},
		{"var s = `a${1}`;" + fmt.Sprintf(entry, ""), "computes"},
		{"let n = 0;" + fmt.Sprintf(entry, ""), "let"},
		{"var n = 0;" + fmt.Sprintf(entry, "n++;"), "assigns its top-level variable n"},
		{"var n = 0;" + fmt.Sprintf(entry, "n += 2;"), "assigns"},
		{"var n = 0;" + fmt.Sprintf(entry, "[n] = [2];"), "assigns"},
		{"var n = 0;" + fmt.Sprintf(entry, "({k: n} = {k: 2});"), "assigns"},
		{"var n = 0;" + fmt.Sprintf(entry, "({n} = {n: 2});"), "assigns"},
		{"var n = 0;" + fmt.Sprintf(entry, "for (n in {a: 1}) {}"), "assigns"},
		{"var n = 0;" + fmt.Sprintf(entry, "for (n of [1]) {}"), "assigns"},
		{"var n = 0;" + fmt.Sprintf(entry, "var f = function () { n = 3; };"), "assigns"},
		{fmt.Sprintf(entry, "decodeUplink = null;"), "assigns its top-level variable decodeUplink"},
		{"var undefined = 1;" + fmt.Sprintf(entry, ""), "declares undefined"},
		{"var [a] = [1];" + fmt.Sprintf(entry, ""), "destructures"},
		{"count = 0;" + fmt.Sprintf(entry, ""), "does more"},
		{"{ var x = 1; }" + fmt.Sprintf(entry, ""), "does more"},
		{"if (true) {}" + fmt.Sprintf(entry, ""), "does more"},
		{fmt.Sprintf(entry, "var n = 010;"), "strict"},
	} {
		c, err := Compile("check.js", []byte(tc.src), relaxed)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if ok, why := c.Reusable(); ok || !strings.Contains(why, tc.why) {
			t.Errorf("%s: reusable %v (%q), want not, mentioning %q", tc.src, ok, why, tc.why)
		}
	}
}

// snapshotSource renders everything reachable from the global object and
// the hidden intrinsics, through Reflect (which the lock leaves alone):
// each object's prototype, extensibility and own properties with their
// attributes and values. Objects are numbered in the order found.
const snapshotSource = `(function (extra) {
  "use strict";
  var ids = new Map(), out = [], queue = [];
  function id(v) {
    if (v === null || (typeof v !== "object" && typeof v !== "function")) {
      return typeof v === "symbol" ? v.toString() : typeof v + ":" + String(v);
    }
    if (!ids.has(v)) { ids.set(v, ids.size); queue.push(v); }
    return "#" + ids.get(v);
  }
  var it = [][Symbol.iterator]();
  [globalThis, Reflect.getPrototypeOf(it), Reflect.getPrototypeOf(""[Symbol.iterator]()),
   Reflect.getPrototypeOf(new Map().entries()), Reflect.getPrototypeOf(new Set().values()),
   Reflect.getPrototypeOf("a".matchAll(/a/g)), Reflect.getPrototypeOf(function* () {}),
   Reflect.getPrototypeOf(async function () {})].concat(extra).forEach(id);
  for (var i = 0; i < queue.length; i++) {
    var o = queue[i], line = [i, id(Reflect.getPrototypeOf(o)), Reflect.isExtensible(o)];
    Reflect.ownKeys(o).forEach(function (k) {
      var d = Reflect.getOwnPropertyDescriptor(o, k);
      line.push(String(k) + "=" + ("value" in d ? id(d.value) : "get " + id(d.get) + " set " + id(d.set)) +
        (d.writable ? "w" : "") + (d.enumerable ? "e" : "") + (d.configurable ? "c" : ""));
    });
    out.push(line.join(" "));
  }
  return out.join("\n");
})`

// snapshot renders lr's objects, c's top-level values among the roots.
func snapshot(t testing.TB, lr *lockedRuntime, c *Codec) string {
	t.Helper()
	v, err := lr.rt.RunString(snapshotSource)
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := goja.AssertFunction(v)
	extra := lr.rt.NewArray()
	if e := lr.codecs[c]; e != nil {
		extra = e.tops.ToObject(lr.rt)
	}
	out, err := fn(goja.Undefined(), extra)
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// idleLocked returns the idle locked runtimes.
func idleLocked(t *testing.T) []*lockedRuntime {
	t.Helper()
	lockedPool.mu.Lock()
	defer lockedPool.mu.Unlock()
	if len(lockedPool.idle) == 0 {
		t.Fatal("no idle locked runtime")
	}
	return slices.Clone(lockedPool.idle)
}

// TestLockedRuntimeUnchanged runs each of lock-probe.js's attempts at
// keeping state or changing the runtime, each a few times with calls
// that attempt nothing in between: every output equals a fresh
// runtime's, and the locked runtime the codec keeps is, property by
// property, what it was after locking.
func TestLockedRuntimeUnchanged(t *testing.T) {
	path := filepath.Join(behaviourDir, "lock-probe.js")
	c := mustLoad(t, path, relaxed)
	ref := freshOnly(t, path)
	quiet := decoders.Input{Bytes: []byte{}}
	primeLocked(t, c, quiet)
	if got, want := outcome(c.Decode(quiet)), outcome(ref.Decode(quiet)); got != want {
		t.Fatalf("quiet call:\nlocked %s\n fresh %s", got, want)
	}
	var lr *lockedRuntime
	for _, l := range idleLocked(t) {
		if l.codecs[c] != nil {
			lr = l
		}
	}
	if lr == nil {
		t.Fatal("the codec's call left no locked runtime holding it")
	}
	before := snapshot(t, lr, c)
	// The snapshot must reach the intrinsics and the codec's values.
	for _, want := range []string{"isFrozen=", "toISOString=", "matchAll=", "next=", "twice=", "nested="} {
		if !strings.Contains(before, want) {
			t.Fatalf("snapshot has no %q", want)
		}
	}
	n := int(c.lockProbeAttempts(t))
	for i := range n {
		for round := range 3 {
			for _, in := range []decoders.Input{{Bytes: []byte{byte(i), byte(round)}}, quiet} {
				if got, want := outcome(c.Decode(in)), outcome(ref.Decode(in)); got != want {
					t.Fatalf("attempt %d, round %d, input % x:\nlocked %s\n fresh %s", i, round, in.Bytes, got, want)
				}
			}
		}
		for _, lr := range idleLocked(t) {
			if lr.codecs[c] == nil {
				continue // a runtime made after the first one was discarded
			}
			if after := snapshot(t, lr, c); after != before {
				t.Fatalf("attempt %d changed a locked runtime:\n%s", i, firstDiff(before, after))
			}
		}
		// Most attempts fail on the locked runtime; keep the codec
		// trying them, so that every attempt meets one.
		keepTrying(c)
	}
	if ok, why := c.Reusable(); !ok {
		t.Fatalf("lock-probe stopped using locked runtimes (%s): the quiet calls should keep it on them", why)
	}
}

// primeLocked decodes in with c until a locked runtime holds c: the
// first call starts locking one in the background and runs fresh. Then
// it resets c's record, as keepTrying.
func primeLocked(t testing.TB, c *Codec, in decoders.Input) {
	t.Helper()
	for range 3 {
		res, err := c.Decode(in)
		if err == nil {
			res.Record.Release()
		}
		lockedPool.buildDone.Wait()
	}
	keepTrying(c)
}

// keepTrying resets c's record of failures on locked runtimes, so a test
// that fails there on purpose keeps meeting them.
func keepTrying(c *Codec) {
	if c.reuse == nil {
		return
	}
	c.reuse.mu.Lock()
	defer c.reuse.mu.Unlock()
	c.reuse.calls, c.reuse.fails, c.reuse.off = 0, 0, false
}

func (c *Codec) lockProbeAttempts(t *testing.T) int64 {
	e, err := c.fresh()
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	return e.rt.Get("attempts").ToObject(e.rt).Get("length").ToInteger()
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "before: " + al[i] + "\n after: " + bl[i]
		}
	}
	return fmt.Sprintf("%d lines before, %d after", len(al), len(bl))
}

// TestStandInsLookTheSame: what a codec can see of the functions the lock
// replaces, without calling them, is what it sees on a fresh runtime, and
// looking does not send the call to a fresh runtime.
func TestStandInsLookTheSame(t *testing.T) {
	src := []byte(`function decodeUplink(input) {
  var F = (function () {}).constructor, O = ({}).constructor, out = {};
  var fns = {F: F, isFrozen: O.isFrozen, isSealed: O.isSealed, isExtensible: O.isExtensible,
    gOPD: O.getOwnPropertyDescriptor, gOPDs: O.getOwnPropertyDescriptors};
  for (var k in fns) {
    var f = fns[k];
    out[k] = [typeof f, f.name, f.length, String(f), Object.getOwnPropertyNames(f).join(),
      Object.getPrototypeOf(f) === Object.getPrototypeOf(function () {}), Object.keys(f).length].join("|");
  }
  out.proto = F.prototype === Object.getPrototypeOf(function () {});
  out.inst = (function () {}) instanceof F;
  out.ctorOfCtor = F.constructor === F;
  out.names = Object.getOwnPropertyNames(O).join();
  return {data: out};
}`)
	c, err := Compile("look.js", src, relaxed)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Compile("look.js", src, relaxed)
	if err != nil {
		t.Fatal(err)
	}
	ref.reuse = nil
	in := decoders.Input{Bytes: []byte{1}}
	primeLocked(t, c, in)
	for range 3 {
		if got, want := outcome(c.Decode(in)), outcome(ref.Decode(in)); got != want {
			t.Fatalf("locked %s\n fresh %s", got, want)
		}
	}
	if c.reuse.fails != 0 || c.reuse.calls != 3 {
		t.Fatalf("%d of %d calls went to a fresh runtime, want none", c.reuse.fails, c.reuse.calls)
	}
}

// TestLockedFallback: a call that fails on a locked runtime is run again
// on a fresh one (its error is the fresh runtime's), one that only reads
// stays on the locked runtime, and a codec that fails there most of the
// time stops trying.
func TestLockedFallback(t *testing.T) {
	c, err := Compile("counter.js", []byte(`var st = {calls: 0};
function decodeUplink(input) { st.calls++; return {data: {calls: st.calls}}; }`), relaxed)
	if err != nil {
		t.Fatal(err)
	}
	primeLocked(t, c, decoders.Input{Bytes: []byte{0}})
	for i := range 40 {
		res, err := c.Decode(decoders.Input{Bytes: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.DataMap()["calls"]; got != 1.0 {
			t.Fatalf("call %d: calls = %v, want 1", i+1, got)
		}
		res.Record.Release()
	}
	if ok, _ := c.Reusable(); ok {
		t.Fatal("counter.js writes its table on every call, yet still tries locked runtimes")
	}
	thrower := behaviour(t, "throw", relaxed)
	ref := freshOnly(t, filepath.Join(behaviourDir, "throw.js"))
	in := decoders.Input{Bytes: []byte{1}}
	primeLocked(t, thrower, in)
	if got, want := outcome(thrower.Decode(in)), outcome(ref.Decode(in)); got != want {
		t.Fatalf("throwing codec:\nlocked %s\n fresh %s", got, want)
	}
	if thrower.reuse.fails != 1 {
		t.Fatalf("throwing codec: %d fallbacks, want 1", thrower.reuse.fails)
	}
}

// TestLockedConsole: console output of a call that succeeds on a locked
// runtime is written once; that of a call run again on a fresh runtime
// only from the fresh run.
func TestLockedConsole(t *testing.T) {
	var logs strings.Builder
	opts := relaxed
	opts.Logger = zerolog.New(syncWriter{new(sync.Mutex), &logs}).Level(zerolog.DebugLevel)
	c, err := Compile("log.js", []byte(`var st = {n: 0};
function decodeUplink(input) {
  console.log("call", input.bytes[0]);
  if (input.bytes[0] === 2) { st.n++; }
  return {data: {n: st.n}};
}`), opts)
	if err != nil {
		t.Fatal(err)
	}
	primeLocked(t, c, decoders.Input{Bytes: []byte{0}})
	for _, b := range []byte{1, 2} {
		res, err := c.Decode(decoders.Input{Bytes: []byte{b}})
		if err != nil {
			t.Fatal(err)
		}
		res.Record.Release()
	}
	for _, want := range []string{"call 1", "call 2"} {
		if n := strings.Count(logs.String(), want); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", want, n, logs.String())
		}
	}
	if c.reuse.fails != 1 || c.reuse.calls != 2 {
		t.Fatalf("%d of %d calls went to a fresh runtime, want the second only", c.reuse.fails, c.reuse.calls)
	}
}

// BenchmarkScriptLock is setting up one locked runtime (goja.New and
// freezing every intrinsic), paid once per runtime kept, and running one
// codec's top level in it, paid once per codec and runtime.
func BenchmarkScriptLock(b *testing.B) {
	c := mustLoad(b, filepath.Join(codecsDir, "elsys-ers-co2.js"), relaxed)
	b.Run("runtime", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			lr, err := newLockedRuntime()
			if err != nil {
				b.Fatal(err)
			}
			lr.timer.Stop()
		}
	})
	b.Run("codec", func(b *testing.B) {
		lr, err := newLockedRuntime()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			delete(lr.codecs, c)
			if _, err := lr.engineFor(c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFreshProgramOnDemand: a codec on locked runtimes does not keep the
// program a fresh runtime runs (half of what a compiled codec holds)
// until a call needs a fresh runtime; that call compiles it, answers as
// a codec decoded on fresh runtimes only does, and it is kept. A codec
// that never runs on locked runtimes keeps it from the start.
func TestFreshProgramOnDemand(t *testing.T) {
	elsys := mustLoad(t, filepath.Join(codecsDir, "elsys-ers-co2.js"), relaxed)
	if ok, why := elsys.Reusable(); !ok || elsys.prog != nil {
		t.Fatalf("elsys-ers-co2: reusable %v (%s), program kept %v; want reusable without it", ok, why, elsys.prog != nil)
	}
	PrepareLocked()
	lockedPool.buildDone.Wait() // a locked runtime idle: no call needs a fresh one
	in := decoders.Input{FPort: 1, Bytes: []byte{0x01, 0x00, 0xe2, 0x02, 0x29}}
	for range 5 {
		res, err := elsys.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		res.Record.Release()
	}
	if elsys.prog != nil {
		t.Fatal("elsys-ers-co2 compiled its fresh program though every call ran on a locked runtime")
	}

	thrower := behaviour(t, "throw", relaxed)
	ref := freshOnly(t, filepath.Join(behaviourDir, "throw.js"))
	if thrower.prog != nil {
		t.Fatal("throw.js kept its fresh program after Compile")
	}
	tin := decoders.Input{Bytes: []byte{1}}
	for i := range 2 {
		if got, want := outcome(thrower.Decode(tin)), outcome(ref.Decode(tin)); got != want {
			t.Fatalf("call %d: throwing codec:\nlocked, then fresh %s\n fresh only        %s", i+1, got, want)
		}
		if thrower.prog == nil {
			t.Fatalf("call %d: throw.js fell back to a fresh runtime without its program kept", i+1)
		}
	}

	state := behaviour(t, "state", relaxed)
	if ok, _ := state.Reusable(); ok || state.prog == nil {
		t.Fatalf("state.js: reusable %v, program kept %v; want fresh runtimes only, program kept", ok, state.prog != nil)
	}
}
