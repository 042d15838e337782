package script

import (
	"errors"
	"fmt"
	"time"

	"github.com/dop251/goja"

	"github.com/sensorgate/sensorgate/decoders"
)

// engine is a codec in a runtime: the file's top level has run in it and
// the entry points are looked up. A fresh engine (lr nil) is used for a
// single call and discarded, as The Things Stack and ChirpStack run every
// decode in a fresh state; a codec's engine in a locked runtime
// (reuse.go) is reused, since no call can change what it holds.
type engine struct {
	c         *Codec
	rt        *goja.Runtime
	style     Style
	entry     goja.Callable
	normalize goja.Callable // nil without normalizeUplink
	date      goja.Value    // the Date constructor, taken before the codec could replace it
	gopd      goja.Callable // Object.getOwnPropertyDescriptor, likewise, for readTracker

	// timer interrupts the runtime when a call overruns; fired tells a
	// late Stop that the interrupt was delivered and must be cleared
	// before the runtime is used again.
	timer *time.Timer
	fired chan struct{}

	argv  [3]goja.Value
	items []any // the payload's bytes for NewArray, reused: NewArray copies them

	// dev is the device of the call running, for console output; logs
	// counts the call's console messages against maxConsoleMessages.
	dev  string
	logs int

	// lr is the locked runtime this engine is the codec's part of
	// (reuse.go), nil for a fresh one; console output of a call on it
	// waits in held until the call is known to count.
	lr   *lockedRuntime
	held []heldLog
	tops goja.Value // on a locked runtime, the top level's values
}

// errDeadline is the value a timed-out runtime is interrupted with.
var errDeadline = errors.New("script: deadline")

// enginePanic is a Go panic inside the engine, recovered.
type enginePanic struct{ v any }

func (p *enginePanic) Error() string { return fmt.Sprint(p.v) }

// Unwrap lets an interrupt that surfaced as a panic (goja panics with it
// when it hits a getter called from Export) still read as a timeout.
func (p *enginePanic) Unwrap() error {
	err, _ := p.v.(error)
	return err
}

// newEngine sets up a fresh runtime and runs the file's top level in it.
// The first engine of a codec (c.style still zero) finds the entry
// point; later ones look up the one it found.
func (c *Codec) newEngine() (*engine, error) {
	prog, err := c.program()
	if err != nil {
		return nil, err
	}
	rt := goja.New()
	rt.SetMaxCallStackSize(c.opts.MaxCallDepth)
	e := &engine{c: c, rt: rt, fired: make(chan struct{}, 1)}
	e.timer = time.AfterFunc(time.Hour, func() {
		rt.Interrupt(errDeadline)
		e.fired <- struct{}{}
	})
	e.timer.Stop()
	e.installGlobals()
	if c.style == 0 || c.style == StyleUplink {
		e.date = rt.Get("Date")
		e.gopd = pristineGOPD(rt)
	}

	err = e.call(c.opts.Timeout, func() error {
		_, err := rt.RunProgram(prog)
		return err
	})
	if err != nil {
		e.close()
		return nil, c.loadError(err, c.opts.Timeout)
	}
	styles := []Style{StyleUplink, StyleChirpStackV3, StyleTTNv2}
	if c.style != 0 {
		styles = []Style{c.style}
	}
	for _, s := range styles {
		if fn, ok := goja.AssertFunction(rt.Get(s.String())); ok {
			e.style, e.entry = s, fn
			break
		}
	}
	if e.entry == nil {
		e.close()
		if c.style != 0 {
			return nil, loadErr(nil, "script: codec %s: its top level did not define %s this time: a codec must define its entry point unconditionally", c.file, c.style)
		}
		return nil, loadErr(nil, "script: codec %s defines none of decodeUplink(input), Decode(fPort, bytes, variables) or Decoder(bytes, fPort): it is not a The Things Stack or ChirpStack codec", c.file)
	}
	if v := rt.Get("normalizeUplink"); e.style == StyleUplink && v != nil && !goja.IsUndefined(v) {
		fn, ok := goja.AssertFunction(v)
		if !ok {
			e.close()
			return nil, loadErr(nil, "script: codec %s: normalizeUplink is not a function", c.file)
		}
		e.normalize = fn
	}
	if c.style != 0 && (e.normalize != nil) != c.normalize {
		e.close()
		return nil, loadErr(nil, "script: codec %s: its top level defined normalizeUplink on one run and not on another: define it unconditionally", c.file)
	}
	return e, nil
}

func (c *Codec) loadError(err error, limit time.Duration) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return loadErr(err, "script: codec %s: its top level ran longer than %v: it runs before every call, so it must only define functions and tables", c.file, limit)
	}
	return loadErr(err, "script: codec %s: its top level failed: %v", c.file, err)
}

// close releases the runtime's timer; the runtime itself is garbage.
func (e *engine) close() { e.timer.Stop() }

// call runs f under a time limit, with panics recovered. After it
// returns, no interrupt is pending on the runtime.
func (e *engine) call(limit time.Duration, f func() error) (err error) {
	e.timer.Reset(limit)
	defer func() {
		if !e.timer.Stop() {
			// The interrupt fired (maybe after f returned): wait for it
			// to be set, then clear it, so the next call does not stop
			// at once.
			<-e.fired
			e.rt.ClearInterrupt()
		}
	}()
	defer func() {
		if r := recover(); r != nil {
			err = &enginePanic{r}
		}
	}()
	return f()
}

// classify turns a failed call into an operator-facing error and says
// whether the runtime must be discarded: after an interrupt, a stack
// overflow or a panic its global state may be half-updated.
func (c *Codec) classify(fn string, err error) (error, bool) {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return &callError{kind: ErrTimeout, msg: fmt.Sprintf("script: codec %s: %s took longer than %v: fix the loop or raise decoders.timeout", c.file, fn, c.opts.Timeout)}, true
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s exceeded the call depth limit of %d (runaway recursion?): fix the codec", c.file, fn, c.opts.MaxCallDepth)}, true
	}
	var p *enginePanic
	if errors.As(err, &p) {
		return &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s crashed the JavaScript engine (%v): keep the payload and report it", c.file, fn, p.v)}, true
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return &callError{kind: ErrCodec, cause: err, msg: fmt.Sprintf("script: codec %s: %s threw %s: the codec cannot read this payload, or has a bug", c.file, fn, ex.Error())}, false
	}
	if e, ok := err.(*callError); ok {
		return e, false
	}
	if _, ok := err.(*RejectedError); ok {
		return err, false
	}
	return &callError{kind: ErrCodec, cause: err, msg: fmt.Sprintf("script: codec %s: %s: %v", c.file, fn, err)}, true
}

// args builds the arguments of e's entry point for one payload, as The
// Things Stack and ChirpStack give them.
func (e *engine) args(in decoders.Input) ([]goja.Value, error) {
	rt := e.rt
	items := e.items[:0]
	for _, b := range in.Bytes {
		items = append(items, byteValues[b])
	}
	bytes := rt.NewArray(items...)
	clear(items) // hold no values between calls
	if cap(items) <= maxReusedItems {
		e.items = items[:0]
	}
	vars := rt.NewObject()
	for k, v := range in.Variables {
		_ = vars.Set(k, v)
	}
	fport := rt.ToValue(int64(in.FPort))
	switch e.style {
	case StyleUplink:
		t := in.Time
		if t.IsZero() {
			t = time.Now()
		}
		recv, err := rt.New(e.date, rt.ToValue(t.UnixMilli()))
		if err != nil {
			return nil, err
		}
		input := rt.NewObject()
		_ = input.Set("bytes", bytes)
		_ = input.Set("fPort", fport)
		_ = input.Set("recvTime", recv)
		_ = input.Set("variables", vars)
		return append(e.argv[:0], input), nil
	case StyleChirpStackV3:
		return append(e.argv[:0], fport, bytes, vars), nil
	}
	return append(e.argv[:0], bytes, fport), nil
}

// byteValues holds the byte values boxed once, for args.
var byteValues = func() (s [256]any) {
	for i := range s {
		s[i] = int64(i)
	}
	return s
}()

// maxReusedItems bounds the bytes buffer an engine keeps between calls,
// so one huge payload does not pin its size for the engine's life.
const maxReusedItems = 1024

// run decodes one payload on e, writing the decoded data into rec (out.Data
// stays nil). It reports whether e must be discarded.
func (c *Codec) run(e *engine, in decoders.Input, rec *decoders.Record) (out Output, err error, broken bool) {
	fn := e.style.String()
	var data goja.Value
	err = e.call(c.opts.Timeout, func() error {
		args, err := e.args(in)
		if err != nil {
			return err
		}
		e.dev, e.logs, e.held = in.DevEUI, 0, e.held[:0]
		ret, err := e.entry(goja.Undefined(), args...)
		if err != nil {
			return err
		}
		if e.style == StyleUplink {
			if data, out.Warnings, err = c.result(fn, ret); err != nil {
				return err
			}
		} else {
			data = ret
		}
		return c.exportData(fn, data, walker{rec: rec})
	})
	if err != nil {
		err, broken = c.classify(fn, err)
		return Output{}, err, broken
	}
	if e.normalize == nil {
		return out, nil, false
	}

	const nfn = "normalizeUplink"
	err = e.call(c.opts.Timeout, func() error {
		input := e.rt.NewObject()
		tr := newReadTracker(e.rt, e.gopd)
		_ = input.Set("data", tr.track(data))
		ret, err := e.normalize(goja.Undefined(), input)
		out.Read = tr.read
		if err != nil {
			return err
		}
		ndata, warnings, err := c.result(nfn, ret)
		if err != nil {
			return err
		}
		out.NormalizeWarnings = warnings
		out.Normalized, err = c.exportNormalized(ndata)
		return err
	})
	if err != nil {
		err, broken = c.classify(nfn, err)
		return Output{}, err, broken
	}
	return out, nil, false
}

// result reads a {data, errors, warnings} object. A non-empty errors
// array is a *RejectedError, as in The Things Stack and ChirpStack.
func (c *Codec) result(fn string, ret goja.Value) (goja.Value, []string, error) {
	obj, ok := ret.(*goja.Object)
	if !ok || obj.ClassName() == "Array" {
		return nil, nil, &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s returned %s, want an object {data, errors, warnings}: fix the codec", c.file, fn, describe(ret))}
	}
	errs, err := c.stringList(fn, "errors", obj.Get("errors"))
	if err != nil {
		return nil, nil, err
	}
	if len(errs) > 0 {
		return nil, nil, &RejectedError{Codec: c.file, Func: fn, Messages: errs}
	}
	warnings, err := c.stringList(fn, "warnings", obj.Get("warnings"))
	if err != nil {
		return nil, nil, err
	}
	return obj.Get("data"), warnings, nil
}

// stringList reads an errors or warnings array; absent means none, and a
// lone string is taken as one message rather than failing the uplink.
func (c *Codec) stringList(fn, key string, v goja.Value) ([]string, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		if s, isStr := v.Export().(string); isStr {
			return []string{s}, nil
		}
		return nil, &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s returned %s %s, want an array of strings: fix the codec", c.file, fn, key, describe(v))}
	}
	if obj.ClassName() != "Array" {
		return nil, &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s returned %s %s, want an array of strings: fix the codec", c.file, fn, key, describe(v))}
	}
	n := int(obj.Get("length").ToInteger())
	if n == 0 {
		return nil, nil
	}
	if n > maxValues {
		return nil, &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s returned %d %s, more than %d: fix the codec", c.file, fn, n, key, maxValues)}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = obj.Get(itoa(i)).String()
	}
	return out, nil
}

// exportData writes the decoded data, which must be an object, with w.
func (c *Codec) exportData(fn string, v goja.Value, w walker) error {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s returned no data and no errors: fix the codec (it should report why in errors)", c.file, fn)}
	}
	obj, ok := v.(*goja.Object)
	if !ok || obj.ClassName() == "Array" {
		return &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: %s returned data %s, want an object: fix the codec", c.file, fn, describe(v))}
	}
	if err := w.object(obj, 0); err != nil {
		return &callError{kind: ErrCodec, cause: err, msg: fmt.Sprintf("script: codec %s: %s data: %v: fix the codec", c.file, fn, err)}
	}
	return nil
}

// exportNormalized converts normalizeUplink's data: one object or an
// array of objects, each one measurement.
func (c *Codec) exportNormalized(v goja.Value) ([]map[string]any, error) {
	bad := func(what string) error {
		return &callError{kind: ErrCodec, msg: fmt.Sprintf("script: codec %s: normalizeUplink returned data %s, want an object or an array of objects: fix the codec", c.file, what)}
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, bad(describe(v))
	}
	obj, ok := v.(*goja.Object)
	if !ok {
		return nil, bad(describe(v))
	}
	// Through a record, for the walker's bounds; Map gives toGo's shapes.
	rec := decoders.NewRecord(0)
	defer rec.Release()
	if err := (walker{rec: rec}).value("data", obj, false, 0); err != nil {
		return nil, &callError{kind: ErrCodec, cause: err, msg: fmt.Sprintf("script: codec %s: normalizeUplink data: %v: fix the codec", c.file, err)}
	}
	switch x := rec.Map()["data"].(type) {
	case map[string]any:
		return []map[string]any{x}, nil
	case []any:
		out := make([]map[string]any, 0, len(x))
		for i, el := range x {
			m, ok := el.(map[string]any)
			if !ok {
				return nil, bad(fmt.Sprintf("with element %d a %T", i, el))
			}
			out = append(out, m)
		}
		return out, nil
	}
	return nil, bad(describe(v))
}

// describe names a JavaScript value's kind for an error message.
func describe(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	if obj, ok := v.(*goja.Object); ok {
		return "a JavaScript " + obj.ClassName()
	}
	s := v.String()
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("%s (%s)", v.ExportType(), s)
}
