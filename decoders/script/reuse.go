package script

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
	"github.com/dop251/goja/unistring"

	"github.com/sensorgate/sensorgate/decoders"
)

// Locked runtimes: calls of a codec reuse a runtime in which its top
// level has run once, without any call seeing what an earlier one did.
// Running the top level is most of a fresh runtime's cost (goja.New is
// under a microsecond; a top level that builds a table of a dozen
// functions costs 15–25 µs), so reuse has to keep the top level's
// objects, and therefore has to make sure no call can change them, nor
// anything else in the runtime. docs/codec-sandbox.md ("Fresh state per
// call: locked runtimes") gives the argument; in short:
//
//   - Only codecs whose source passes checkReusable use locked runtimes.
//     Their top level only declares functions, var and const built from
//     literals (it calls nothing, so it reads no clock and leaves no
//     closure state); no code of theirs assigns a top-level name, or
//     uses this, arguments, eval, Function, globalThis, Reflect, Proxy,
//     Promise, Buffer, try, generators, async, classes, with or a
//     function declared in a block: the places where strict and sloppy
//     code behave differently without throwing, and the ways to reach
//     the global object, compile code or swallow an exception.
//   - A locked runtime is locked once: stand-ins, then everything
//     reachable from the global object and the hidden intrinsics
//     (iterator, generator and async function prototypes,
//     %ThrowTypeError%) frozen. Reusable codecs share it, one call at a
//     time: each codec's top level runs there once, compiled in strict
//     mode as a function's body (wrapTopLevel), and its values are frozen.
//   - In strict code every write to a frozen object, and every implicit
//     global, throws; so do the built-ins that write. With try, promises
//     and generators excluded, a throw ends the call. The few functions
//     that would tell a frozen object from a fresh one without writing
//     (Object.isFrozen, isSealed, isExtensible, getOwnPropertyDescriptor,
//     getOwnPropertyDescriptors) and the Function constructor (reachable
//     as any function's constructor, it would compile sloppy code) are
//     replaced by stand-ins that look the same and, when called, taint
//     the call and throw.
//   - So a call on a locked runtime either does exactly what the same
//     call does on a fresh runtime, or fails. Every failed or tainted
//     call is run again on a fresh runtime, whose outcome is the one
//     returned: failures cost a second run, never a different answer.
//
// A codec that keeps state in a table (a cache, a last frame) therefore
// fails on the locked runtime at its first write and is decoded on a
// fresh one; one that does so on most calls stops trying locked
// runtimes.

// reuseBanned are the names whose mention makes a codec run on fresh
// runtimes only, wherever they appear (as a variable or a property
// name). eval and Function compile code at run time (sloppy code, which
// would not throw on a frozen object), globalThis reaches the global
// object, arguments differs between sloppy and strict code, Reflect's
// functions report failed writes as false instead of throwing, Proxy
// traps could tell frozen targets apart, Promise catches exceptions,
// WeakRef and FinalizationRegistry run or answer outside the call, and
// Buffer's prototype is a native object that cannot be frozen.
var reuseBanned = map[string]bool{
	"eval": true, "Function": true, "globalThis": true, "arguments": true,
	"Reflect": true, "Proxy": true, "Promise": true, "WeakRef": true,
	"FinalizationRegistry": true, "Buffer": true, "GoError": true,
}

// checkReusable reports why a codec's source cannot run on locked
// runtimes, or "" when it can. It is conservative: anything it does not
// recognise as safe keeps the codec on fresh runtimes. On success it
// returns the source parsed, and the names its top level declares.
func checkReusable(name, src string) (why string, prog *ast.Program, names []string) {
	prog, err := parser.ParseFile(nil, name, src, 0)
	if err != nil {
		return "does not parse: " + err.Error(), nil, nil
	}
	for _, st := range prog.Body {
		if why := topLevelOK(st); why != "" {
			return why, nil, nil
		}
		switch st := st.(type) {
		case *ast.FunctionDeclaration:
			names = append(names, st.Function.Name.Name.String())
		case *ast.VariableStatement:
			for _, b := range st.List {
				names = append(names, b.Target.(*ast.Identifier).Name.String())
			}
		case *ast.LexicalDeclaration:
			for _, b := range st.List {
				names = append(names, b.Target.(*ast.Identifier).Name.String())
			}
		}
	}
	for _, n := range names {
		// On a fresh runtime these stay what they are (the global
		// properties cannot be written); as a function's variables they
		// would not.
		if n == "undefined" || n == "NaN" || n == "Infinity" {
			return "declares " + n, nil, nil
		}
	}
	// Function declarations are allowed directly in a program's or a
	// function's body; in a block, sloppy code hoists them and strict
	// code does not, so they are not allowed there.
	allowed := map[*ast.FunctionDeclaration]bool{}
	markBody := func(list []ast.Statement) {
		for _, st := range list {
			if fd, ok := st.(*ast.FunctionDeclaration); ok {
				allowed[fd] = true
			}
		}
	}
	markBody(prog.Body)
	top := map[string]bool{}
	for _, n := range names {
		top[n] = true
	}
	walkAST(reflect.ValueOf(prog), func(n any) bool {
		switch n := n.(type) {
		case *ast.FunctionLiteral:
			if n.Async || n.Generator {
				why = "has an async function or a generator"
			} else if n.Body != nil {
				markBody(n.Body.List)
			}
		case *ast.ArrowFunctionLiteral:
			if n.Async {
				why = "has an async function"
			} else if b, ok := n.Body.(*ast.BlockStatement); ok {
				markBody(b.List)
			}
		case *ast.FunctionDeclaration:
			if !allowed[n] {
				why = "declares a function inside a block"
			}
		case *ast.Identifier:
			if reuseBanned[n.Name.String()] {
				why = "uses " + n.Name.String()
			}
		case ast.Identifier:
			if reuseBanned[n.Name.String()] {
				why = "uses " + n.Name.String()
			}
		case *ast.AssignExpression:
			why = writesTop(n.Left, top)
		case *ast.UnaryExpression:
			if n.Operator == token.INCREMENT || n.Operator == token.DECREMENT {
				why = writesTop(n.Operand, top)
			}
		case *ast.ForInStatement:
			if into, ok := n.Into.(*ast.ForIntoExpression); ok {
				why = writesTop(into.Expression, top)
			}
		case *ast.ForOfStatement:
			if into, ok := n.Into.(*ast.ForIntoExpression); ok {
				why = writesTop(into.Expression, top)
			}
		case *ast.ThisExpression:
			why = "uses this"
		case *ast.TryStatement:
			why = "uses try"
		case *ast.WithStatement:
			why = "uses with"
		case *ast.ClassLiteral:
			why = "declares a class"
		case *ast.YieldExpression, *ast.AwaitExpression:
			why = "uses yield or await"
		}
		return why == ""
	})
	if why != "" {
		return why, nil, nil
	}
	return "", prog, names
}

// writesTop reports a top-level variable that target (the left side of
// an assignment, or what ++ or a for-in/of loop writes) assigns. The top
// level's variables are the locals of its function on a locked runtime
// (wrapTopLevel), which freezing does not cover; so a codec that assigns
// one anywhere, even one of the same name in a function of its own, stays
// on fresh runtimes.
func writesTop(target ast.Expression, top map[string]bool) string {
	switch t := target.(type) {
	case *ast.Identifier:
		if top[t.Name.String()] {
			return "assigns its top-level variable " + t.Name.String()
		}
	case *ast.ArrayLiteral:
		for _, el := range t.Value {
			if why := writesTop(el, top); why != "" {
				return why
			}
		}
	case *ast.ArrayPattern:
		for _, el := range append(slices.Clone(t.Elements), t.Rest) {
			if why := writesTop(el, top); why != "" {
				return why
			}
		}
	case *ast.ObjectLiteral:
		for _, p := range t.Value {
			if why := writesTop(p, top); why != "" {
				return why
			}
		}
	case *ast.ObjectPattern:
		for _, p := range t.Properties {
			if why := writesTop(p, top); why != "" {
				return why
			}
		}
		return writesTop(t.Rest, top)
	case *ast.PropertyKeyed:
		return writesTop(t.Value, top)
	case *ast.PropertyShort:
		if top[t.Name.Name.String()] {
			return "assigns its top-level variable " + t.Name.Name.String()
		}
	case *ast.SpreadElement:
		return writesTop(t.Expression, top)
	case *ast.AssignExpression: // a default in a pattern
		return writesTop(t.Left, top)
	}
	return ""
}

// walkAST calls visit on every node reachable from v, parents first,
// until visit returns false. It goes by reflection so that no kind of
// node can be missed.
func walkAST(v reflect.Value, visit func(any) bool) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return true
		}
		if v.Kind() == reflect.Pointer && v.Type().Elem().PkgPath() == astPkg {
			if !visit(v.Interface()) {
				return false
			}
		}
		return walkAST(v.Elem(), visit)
	case reflect.Struct:
		if v.Type().PkgPath() == astPkg && v.CanInterface() {
			if id, ok := v.Interface().(ast.Identifier); ok {
				return visit(id)
			}
		}
		for i := range v.NumField() {
			if f := v.Field(i); v.Type().Field(i).IsExported() && !walkAST(f, visit) {
				return false
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			if !walkAST(v.Index(i), visit) {
				return false
			}
		}
	}
	return true
}

var astPkg = reflect.TypeFor[ast.Program]().PkgPath()

// topLevelOK accepts the statements a locked runtime's top level may
// have: function declarations, var and const declarations of simple
// names with literal-built values, and directives.
func topLevelOK(st ast.Statement) string {
	switch st := st.(type) {
	case *ast.FunctionDeclaration, *ast.EmptyStatement:
		return ""
	case *ast.ExpressionStatement:
		if _, ok := st.Expression.(*ast.StringLiteral); ok {
			return "" // a directive ("use strict")
		}
	case *ast.VariableStatement:
		return bindingsOK(st.List)
	case *ast.LexicalDeclaration:
		if st.Token == token.CONST {
			return bindingsOK(st.List)
		}
		return "declares let at its top level"
	}
	return "its top level does more than declare functions and constants"
}

func bindingsOK(list []*ast.Binding) string {
	for _, b := range list {
		if _, ok := b.Target.(*ast.Identifier); !ok {
			return "destructures at its top level"
		}
		if b.Initializer != nil && !literalBuilt(b.Initializer) {
			return "its top level computes a value (a call, an operator on a variable, a property read)"
		}
	}
	return ""
}

// literalBuilt accepts what evaluates without running any code of the
// codec's or reading anything but a variable: literals, arrays and
// objects of such values, functions, and operators on primitive
// literals.
func literalBuilt(e ast.Expression) bool {
	switch e := e.(type) {
	case *ast.StringLiteral, *ast.NumberLiteral, *ast.BooleanLiteral, *ast.NullLiteral,
		*ast.Identifier, *ast.FunctionLiteral, *ast.ArrowFunctionLiteral:
		return true
	case *ast.TemplateLiteral:
		return e.Tag == nil && len(e.Expressions) == 0
	case *ast.ArrayLiteral:
		for _, v := range e.Value {
			if v != nil && !literalBuilt(v) {
				return false
			}
		}
		return true
	case *ast.ObjectLiteral:
		for _, p := range e.Value {
			pk, ok := p.(*ast.PropertyKeyed)
			if !ok || pk.Computed {
				return false
			}
			switch pk.Kind {
			case ast.PropertyKindValue:
				if !literalBuilt(pk.Value) {
					return false
				}
			case ast.PropertyKindGet, ast.PropertyKindSet, ast.PropertyKindMethod:
			default:
				return false
			}
		}
		return true
	case *ast.UnaryExpression, *ast.BinaryExpression:
		return primitiveLiteral(e)
	}
	return false
}

// primitiveLiteral accepts literals of primitives and operators on them,
// which call nothing.
func primitiveLiteral(e ast.Expression) bool {
	switch e := e.(type) {
	case *ast.StringLiteral, *ast.NumberLiteral, *ast.BooleanLiteral, *ast.NullLiteral:
		return true
	case *ast.UnaryExpression:
		switch e.Operator {
		case token.MINUS, token.PLUS, token.NOT, token.BITWISE_NOT, token.TYPEOF, token.VOID:
			return !e.Postfix && primitiveLiteral(e.Operand)
		}
	case *ast.BinaryExpression:
		if e.Operator == token.IN || e.Operator == token.INSTANCEOF {
			return false
		}
		return primitiveLiteral(e.Left) && primitiveLiteral(e.Right)
	}
	return false
}

// wrapTopLevel turns a reusable codec's program into a function whose
// body is the top level and which returns the values of the names the
// top level declares, entry points first: [decodeUplink or Decode or
// Decoder, normalizeUplink or undefined, ...names]. Locked runtimes are
// shared by codecs, so a codec's declarations must be its own, not
// properties of the global object; no reusable codec can reach the
// global object (checkReusable), so it cannot tell the difference. The
// statements keep their positions in the file.
func wrapTopLevel(prog *ast.Program, names []string, style Style) *ast.Program {
	ident := func(n string) ast.Expression {
		return &ast.Identifier{Name: unistring.NewFromString(n)}
	}
	declared := map[string]bool{}
	for _, n := range names {
		declared[n] = true
	}
	ret := []ast.Expression{ident(style.String()), ident("undefined")}
	if declared["normalizeUplink"] {
		ret[1] = ident("normalizeUplink")
	}
	for _, n := range names {
		ret = append(ret, ident(n))
	}
	body := append(append([]ast.Statement(nil), prog.Body...), &ast.ReturnStatement{Argument: &ast.ArrayLiteral{Value: ret}})
	fn := &ast.FunctionLiteral{
		ParameterList:   &ast.ParameterList{},
		Body:            &ast.BlockStatement{List: body},
		DeclarationList: prog.DeclarationList,
	}
	return &ast.Program{Body: []ast.Statement{&ast.ExpressionStatement{Expression: fn}}, File: prog.File}
}

// errTainted interrupts a locked runtime whose codec called a stand-in.
var errTainted = errors.New("script: codec reached for what a locked runtime cannot give it")

// lockSource is a locked runtime's prelude, run in a new runtime: it
// takes the intrinsics it needs and returns two functions. lock puts the
// stand-ins (one Go function each, made by taint) in place and freezes
// everything reachable from the roots: own property values, getters and
// setters (symbol-keyed too) and prototypes. The roots are the global
// object and the intrinsics no property leads to. freeze does the same
// for a codec's top-level values; it stops at frozen objects, which
// after lock are all deeply frozen (a top level that only declares
// cannot freeze anything itself).
const lockSource = `(function (taint) {
  "use strict";
  var O = Object, gOPN = O.getOwnPropertyNames, gOPS = O.getOwnPropertySymbols,
      gOPD = O.getOwnPropertyDescriptor, getProto = O.getPrototypeOf,
      freezeObj = O.freeze, isFrozen = O.isFrozen, defProp = O.defineProperty,
      FunctionProto = getProto(function () {}), global = globalThis;
  function walk(roots, skipFrozen) {
    var seen = new Set(), stack = roots.slice();
    while (stack.length > 0) {
      var o = stack.pop();
      if (o === null || (typeof o !== "object" && typeof o !== "function") || seen.has(o)) continue;
      if (skipFrozen && isFrozen(o)) continue;
      seen.add(o);
      freezeObj(o);
      if (!isFrozen(o)) throw new TypeError("an object could not be frozen");
      var keys = gOPN(o).concat(gOPS(o));
      for (var k = 0; k < keys.length; k++) {
        var desc = gOPD(o, keys[k]);
        stack.push(desc.value, desc.get, desc.set);
      }
      stack.push(getProto(o));
    }
  }
  function lock() {
    var standIns = [
      [O, "isFrozen"], [O, "isSealed"], [O, "isExtensible"],
      [O, "getOwnPropertyDescriptor"], [O, "getOwnPropertyDescriptors"],
      [FunctionProto, "constructor"]
    ];
    for (var i = 0; i < standIns.length; i++) {
      var on = standIns[i][0], name = standIns[i][1], orig = on[name], fn = taint(name);
      defProp(fn, "name", {value: orig.name});
      defProp(fn, "length", {value: orig.length});
      if (name === "constructor") {
        defProp(fn, "prototype", {value: orig.prototype, writable: false, enumerable: false, configurable: false});
      }
      defProp(on, name, {value: fn});
    }
    walk([
      global,
      getProto([][Symbol.iterator]()),
      getProto(""[Symbol.iterator]()),
      getProto(new Map()[Symbol.iterator]()),
      getProto(new Set()[Symbol.iterator]()),
      getProto("a".matchAll(/a/g)),
      getProto(function* () {}),
      getProto(async function () {}),
      gOPD(FunctionProto, "caller").get,
      gOPD((function () { return arguments; })(), "callee").get
    ], false);
  }
  return [lock, function freeze(values) { walk(values, true); }];
})`

var lockProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("lock.js", lockSource, true)
})

// lockedRuntime is a runtime locked once and shared by the reusable
// codecs, one call at a time: each codec's top level runs in it (as a
// function, see wrapTopLevel) the first time the codec is called there,
// and its values are frozen. Locking costs milliseconds and the locked
// intrinsics a few hundred KB, so a runtime per codec would not do in a
// worker holding 64 codecs in 32 MiB.
type lockedRuntime struct {
	rt      *goja.Runtime
	timer   *time.Timer
	fired   chan struct{}
	date    goja.Value
	gopd    goja.Callable // the intrinsic, before lock puts its stand-in in place
	freeze  goja.Callable
	codecs  map[*Codec]*engine
	current *engine // the engine of the call running, for console and taint
	tainted bool    // a stand-in was called during the current call
}

// maxCodecsPerRuntime bounds the codecs a locked runtime holds: codecs
// replaced on reload stay in it until it is discarded, which happens
// when it would hold more. Like the worker's bound it must exceed the
// codecs in use: past it every codec's top level runs again.
const maxCodecsPerRuntime = 512

func newLockedRuntime() (*lockedRuntime, error) {
	rt := goja.New()
	lr := &lockedRuntime{rt: rt, fired: make(chan struct{}, 1), codecs: map[*Codec]*engine{}}
	lr.timer = time.AfterFunc(time.Hour, func() {
		rt.Interrupt(errDeadline)
		lr.fired <- struct{}{}
	})
	lr.timer.Stop()
	lr.date = rt.Get("Date")
	lr.gopd = pristineGOPD(rt)
	// console for every codec (one that does not name it cannot reach
	// it: no reusable codec reaches the global object), writing for the
	// codec whose call runs.
	console := rt.NewObject()
	logFn := rt.ToValue(func(call goja.FunctionCall) goja.Value { return lr.current.console(call) })
	for _, name := range []string{"log", "info", "warn", "error", "debug"} {
		_ = console.Set(name, logFn)
	}
	_ = rt.Set("console", console)

	taint := func(goja.FunctionCall) goja.Value {
		lr.tainted = true
		rt.Interrupt(errTainted)
		panic(rt.NewTypeError("sensorgate: not available to a codec on a locked runtime"))
	}
	// The limit only guards against a bug: no codec runs here.
	err := lr.try(time.Minute, func() error {
		v, err := rt.RunProgram(lockProgram())
		if err != nil {
			return err
		}
		prelude, _ := goja.AssertFunction(v)
		fns, err := prelude(goja.Undefined(), rt.ToValue(func(goja.FunctionCall) goja.Value { return rt.ToValue(taint) }))
		if err != nil {
			return err
		}
		obj := fns.ToObject(rt)
		lock, _ := goja.AssertFunction(obj.Get("0"))
		lr.freeze, _ = goja.AssertFunction(obj.Get("1"))
		_, err = lock(goja.Undefined())
		return err
	})
	if err != nil {
		lr.timer.Stop()
		return nil, fmt.Errorf("script: locking a runtime: %w", err)
	}
	return lr, nil
}

// try runs f under a time limit, with panics recovered, as engine.call.
func (lr *lockedRuntime) try(limit time.Duration, f func() error) error {
	e := &engine{rt: lr.rt, timer: lr.timer, fired: lr.fired}
	return e.call(limit, f)
}

// engineFor returns c's part of lr, running c's top level in lr the
// first time.
func (lr *lockedRuntime) engineFor(c *Codec) (*engine, error) {
	if e := lr.codecs[c]; e != nil {
		return e, nil
	}
	rt := lr.rt
	e := &engine{c: c, rt: rt, timer: lr.timer, fired: lr.fired, date: lr.date, gopd: lr.gopd, lr: lr, style: c.style}
	err := e.call(c.opts.Timeout, func() error {
		v, err := rt.RunProgram(c.wrapped)
		if err != nil {
			return err
		}
		top, _ := goja.AssertFunction(v)
		values, err := top(goja.Undefined())
		if err != nil {
			return err
		}
		if _, err := lr.freeze(goja.Undefined(), values); err != nil {
			return err
		}
		obj := values.ToObject(rt)
		var ok bool
		if e.entry, ok = goja.AssertFunction(obj.Get("0")); !ok {
			return fmt.Errorf("%s is not a function", c.style)
		}
		if n := obj.Get("1"); !goja.IsUndefined(n) {
			if e.normalize, ok = goja.AssertFunction(n); !ok {
				return errors.New("normalizeUplink is not a function")
			}
		}
		if (e.normalize != nil) != c.normalize {
			return errors.New("normalizeUplink differs from the fresh runtime's")
		}
		e.tops = values
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(lr.codecs) >= maxCodecsPerRuntime {
		// Mostly codecs since replaced: start over with this one.
		clear(lr.codecs)
	}
	lr.codecs[c] = e
	return e, nil
}

// lockedPool holds the locked runtimes: live counts them (built or being
// built), idle holds the ones no call is using.
var lockedPool struct {
	mu        sync.Mutex
	live      int
	idle      []*lockedRuntime
	building  bool      // one runtime is being locked, off the calls' path
	failedAt  time.Time // the last lock that failed, to wait a minute
	buildDone sync.WaitGroup
}

// maxLocked bounds the locked runtimes: a call that finds none idle runs
// on a fresh runtime. Calls hold one for tens of µs, so with twice the
// cores one is nearly always idle.
var maxLocked = 2 * runtime.GOMAXPROCS(0)

// takeLocked returns an idle locked runtime, or nil when there is none;
// then, if there may be more, it starts locking one in the background.
// Locking costs milliseconds of CPU (much more under the race detector)
// and must not count against the call's time limit, nor a worker's
// wall-clock deadline: the calls meanwhile run on fresh runtimes.
func takeLocked() *lockedRuntime {
	lockedPool.mu.Lock()
	defer lockedPool.mu.Unlock()
	if n := len(lockedPool.idle); n > 0 {
		lr := lockedPool.idle[n-1]
		lockedPool.idle = lockedPool.idle[:n-1]
		return lr
	}
	startLocking()
	return nil
}

// PrepareLocked starts locking a runtime in the background, if none is
// idle or being locked, so that one is likely ready by the first call: a
// codec worker calls it as it starts. No call waits for it.
func PrepareLocked() {
	lockedPool.mu.Lock()
	defer lockedPool.mu.Unlock()
	if len(lockedPool.idle) == 0 {
		startLocking()
	}
}

// startLocking locks one more runtime in the background, one at a time,
// up to maxLocked, and not within a minute of a failure. lockedPool.mu
// is held.
func startLocking() {
	if lockedPool.building || lockedPool.live >= maxLocked || time.Since(lockedPool.failedAt) < time.Minute {
		return
	}
	lockedPool.building = true
	lockedPool.live++
	lockedPool.buildDone.Add(1)
	go func() {
		defer lockedPool.buildDone.Done()
		lr, err := newLockedRuntime()
		lockedPool.mu.Lock()
		defer lockedPool.mu.Unlock()
		lockedPool.building = false
		if err != nil {
			lockedPool.live--
			lockedPool.failedAt = time.Now()
			return
		}
		lockedPool.idle = append(lockedPool.idle, lr)
	}()
}

func putLocked(lr *lockedRuntime) {
	lockedPool.mu.Lock()
	defer lockedPool.mu.Unlock()
	lockedPool.idle = append(lockedPool.idle, lr)
}

// discardLocked drops lr.
func discardLocked(lr *lockedRuntime) {
	lr.timer.Stop()
	lockedPool.mu.Lock()
	defer lockedPool.mu.Unlock()
	lockedPool.live--
}

// reuseState is a codec's record of how its calls fare on locked
// runtimes.
type reuseState struct {
	mu    sync.Mutex
	calls int // calls tried on a locked runtime
	fails int // of those, run again on a fresh runtime
	off   bool
}

func (r *reuseState) use() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.off
}

// note records a call; one that went on to a fresh runtime is a
// failure. A codec that needs that more than a quarter of the time
// (after a few dozen calls) stops trying locked runtimes: each failure
// costs a second run.
func (r *reuseState) note(failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if failed {
		r.fails++
	}
	if r.calls >= 32 && r.fails*4 > r.calls {
		r.off = true
	}
}

// disable stops the codec using locked runtimes, for one whose top level
// could not be set up in one.
func (r *reuseState) disable() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.off = true
}

// execLocked runs the codec on a locked runtime. done is false when the
// call must run on a fresh runtime instead: the codec has no locked
// runtimes, or the call failed or called a stand-in (a call on a locked
// runtime either does what it does on a fresh one or fails). A call that
// ran out of time is done, with its timeout: it ran the steps it would
// have run on a fresh runtime, so it would run out of time there too,
// and a hostile codec must not cost two time limits.
func (c *Codec) execLocked(in decoders.Input, rec *decoders.Record) (out Output, err error, done bool) {
	if c.reuse == nil || !c.reuse.use() {
		return Output{}, nil, false
	}
	lr := takeLocked()
	if lr == nil {
		return Output{}, nil, false // none idle yet
	}
	e, err := lr.engineFor(c)
	if err != nil {
		// The runtime may hold part of the top level; it is not reused.
		discardLocked(lr)
		var ie *goja.InterruptedError
		if !errors.As(err, &ie) { // a slow moment is no reason to give up
			c.reuse.disable()
			c.opts.Logger.Debug().Err(err).Str("codec", c.file).Msg("codec runs on fresh runtimes only")
		}
		return Output{}, nil, false
	}
	lr.current, lr.tainted = e, false
	lr.rt.SetMaxCallStackSize(c.opts.MaxCallDepth)
	out, err, broken := c.run(e, in, rec)
	tainted := lr.tainted
	lr.current, lr.tainted = nil, false
	if tainted {
		// The stand-in's interrupt may not have been delivered.
		lr.rt.ClearInterrupt()
	}
	if err == nil && !tainted {
		e.flushConsole()
		putLocked(lr)
		c.reuse.note(false)
		return out, nil, true
	}
	e.held = e.held[:0] // the fresh run logs instead
	if broken {
		// After a timeout, a stack overflow or a panic the engine's own
		// state is not trusted; the runtime is not reused.
		discardLocked(lr)
	} else {
		putLocked(lr)
	}
	// From here on lr and e may be another call's.
	c.reuse.note(true)
	if !tainted && errors.Is(err, ErrTimeout) {
		return Output{}, err, true
	}
	return Output{}, nil, false
}
