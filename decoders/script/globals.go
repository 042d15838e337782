package script

import (
	"strings"

	"github.com/dop251/goja"
)

// Bounds of a codec's console output, per call: a codec that logs in a
// loop, or logs a whole buffer, must not flood the debug log.
const (
	// maxConsoleMessages is how many console messages one call may log;
	// one more line says that the rest were dropped.
	maxConsoleMessages = 20
	// maxConsoleBytes bounds one console message; a longer one is cut
	// and marked truncated.
	maxConsoleBytes = 1024
)

// globalsUsed says which of the globals installGlobals provides a codec's
// source mentions at all. Setting them up is a good part of the cost of
// a fresh runtime, which every call pays, so a codec that never names
// one does not get it (reaching one by a computed name, as
// globalThis["con" + "sole"], finds nothing).
type globalsUsed struct{ console, buffer bool }

func scanGlobals(src string) globalsUsed {
	return globalsUsed{
		console: strings.Contains(src, "console"),
		buffer:  strings.Contains(src, "Buffer"),
	}
}

// installGlobals gives a fresh runtime what The Things Stack's and
// ChirpStack's runtimes give a codec beyond ECMAScript: console, and
// ChirpStack v4's Buffer, each only if the codec names it. console is one
// native function under five names; Buffer is built on first use.
func (e *engine) installGlobals() {
	if e.c.globals.console {
		e.installConsole()
	}
	if e.c.globals.buffer {
		e.installBuffer()
	}
}

func (e *engine) installConsole() {
	rt := e.rt
	// Codecs log while they are developed and often keep the calls;
	// without console they would throw a ReferenceError.
	console := rt.NewObject()
	logFn := rt.ToValue(e.console)
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		_ = console.Set(name, logFn)
	}
	_ = rt.Set("console", console)
}

func (e *engine) installBuffer() {
	rt := e.rt
	// ChirpStack v4 runs every codec as a module that imports Buffer
	// (Node's Buffer API, for the browser); codecs written for it use
	// Buffer without declaring it.
	global := rt.GlobalObject()
	var getter, setter goja.Value
	define := func(v goja.Value) {
		_ = global.DefineDataProperty("Buffer", v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	getter = rt.ToValue(func(goja.FunctionCall) goja.Value {
		ctor, err := newBuffer(rt)
		if err != nil {
			panic(err) // rethrown into the codec by goja
		}
		define(ctor)
		return ctor
	})
	setter = rt.ToValue(func(call goja.FunctionCall) goja.Value {
		define(call.Argument(0)) // a codec bringing its own Buffer
		return goja.Undefined()
	})
	_ = global.DefineAccessorProperty("Buffer", getter, setter, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// console writes a codec's console.log (info, warn, error, debug) to the
// debug log, with the codec, model and device, bounded per call. On a
// locked runtime the messages wait until the call has succeeded there: a
// call that goes on to a fresh runtime logs from that one only.
func (e *engine) console(call goja.FunctionCall) goja.Value {
	if !e.c.opts.Logger.Debug().Enabled() {
		return goja.Undefined()
	}
	e.logs++
	switch {
	case e.logs == maxConsoleMessages+1:
		e.log(heldLog{dropped: true})
		return goja.Undefined()
	case e.logs > maxConsoleMessages:
		return goja.Undefined()
	}
	var b strings.Builder
	truncated := false
	for i, a := range call.Arguments {
		if i > 0 {
			b.WriteByte(' ')
		}
		s, cut := consoleText(a)
		if room := maxConsoleBytes - b.Len(); len(s) > room {
			s, cut = cutUTF8(s, max(room, 0)), true
		}
		b.WriteString(s)
		if cut {
			truncated = true
			b.WriteString(" …[truncated]")
			break
		}
	}
	e.log(heldLog{msg: b.String(), truncated: truncated})
	return goja.Undefined()
}

// heldLog is one console message: its text, or the notice that the
// call's further messages were dropped.
type heldLog struct {
	msg       string
	truncated bool
	dropped   bool
}

func (e *engine) log(l heldLog) {
	if e.lr != nil {
		e.held = append(e.held, l)
		return
	}
	ev := e.c.opts.Logger.Debug().Str("codec", e.c.file).Str("model", e.c.model).Str("dev_eui", e.dev)
	if l.dropped {
		ev.Msgf("codec console output of this call dropped after %d messages", maxConsoleMessages)
		return
	}
	ev.Bool("truncated", l.truncated).Msg(l.msg)
}

// flushConsole writes what a call on a locked runtime logged.
func (e *engine) flushConsole() {
	lr := e.lr
	e.lr = nil
	for _, l := range e.held {
		e.log(l)
	}
	e.lr = lr
	e.held = e.held[:0]
}

// consoleText is one console argument as text, and whether it was cut:
// a long JavaScript string is cut to maxConsoleBytes characters before
// it is converted to Go, which would copy it whole.
func consoleText(a goja.Value) (string, bool) {
	if sym, ok := a.(*goja.Symbol); ok { // printed as Node prints one
		return "Symbol(" + cutUTF8(sym.String(), maxConsoleBytes) + ")", false
	}
	// ToString may run the codec's own toString: it does so inside the
	// call, under its time limit.
	js := a.ToString()
	if str, ok := js.(goja.String); ok && str.Length() > maxConsoleBytes {
		return str.Substring(0, maxConsoleBytes).String(), true
	}
	return js.String(), false
}

// cutUTF8 returns s cut to at most n bytes, not inside a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
