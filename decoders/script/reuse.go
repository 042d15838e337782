package script

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
)

// Locked runtimes: a codec's calls reuse runtimes whose top level has run
// once, without any call seeing what an earlier one did. Running the top
// level is most of a fresh runtime's cost (goja.New is under a
// microsecond; a top level that builds a table of a dozen functions costs
// 15–25 µs), so reuse has to keep the top level's objects, and therefore
// has to make sure no call can change them, nor anything else in the
// runtime. docs/codec-sandbox.md ("Locked runtimes") gives the argument;
// in short:
//
//   - Only codecs whose source passes checkReusable get locked runtimes.
//     Their top level only declares functions and constants built from
//     literals (it calls nothing, so it reads no clock and leaves no
//     closure state), and no function of theirs uses this, arguments,
//     eval, Function, globalThis, Reflect, Proxy, Promise, try,
//     generators, async, classes, with, let at the top level or a
//     function declared in a block: the places where strict and sloppy
//     code behave differently without throwing, and the ways to reach
//     code or state the lock cannot cover.
//   - The codec is compiled a second time in strict mode and its top
//     level run once; then every object reachable from the global object
//     and the engine's hidden intrinsics (iterator prototypes, generator
//     and async function prototypes, %ThrowTypeError%) is frozen.
//   - In strict code every write to a frozen object, and every implicit
//     global, throws; so do the built-ins that write. With try, promises
//     and generators excluded, a throw ends the call. The few functions
//     that would tell a frozen object from a fresh one without writing
//     (Object.isFrozen, isSealed, isExtensible, getOwnPropertyDescriptor,
//     getOwnPropertyDescriptors) and the Function constructor (reachable
//     as any function's constructor, it would compile sloppy code) are
//     replaced by stand-ins that look the same and, when called, taint
//     the runtime and throw.
//   - So a call on a locked runtime either does exactly what the same
//     call does on a fresh runtime, or fails. Every failed or tainted
//     call is run again on a fresh runtime, whose outcome is the one
//     returned: failures cost a second run, never a different answer.
//
// A codec that keeps state (a global counter, a cache) therefore fails on
// the locked runtime at its first write and is decoded on a fresh one;
// one that does so on most calls stops trying locked runtimes.

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
// recognise as safe keeps the codec on fresh runtimes. consts are the
// names the top level declares with const: their values live outside
// the global object, so the lock is given them as roots of their own.
func checkReusable(name, src string) (why string, consts []string) {
	prog, err := parser.ParseFile(nil, name, src, 0)
	if err != nil {
		return "does not parse: " + err.Error(), nil
	}
	for _, st := range prog.Body {
		if why := topLevelOK(st); why != "" {
			return why, nil
		}
		if ld, ok := st.(*ast.LexicalDeclaration); ok {
			for _, b := range ld.List {
				consts = append(consts, b.Target.(*ast.Identifier).Name.String())
			}
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
		return why, nil
	}
	return "", consts
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

// errTainted interrupts a locked runtime whose codec called a stand-in.
var errTainted = errors.New("script: codec reached for what a locked runtime cannot give it")

// lockSource is the lock's prelude, run before the codec's top level:
// it takes the intrinsics it needs and every global's value while they
// are the engine's own (a top level may replace Object), and returns
// the function that locks the runtime after the top level. That puts
// the stand-ins (one Go function, taint, under each name) in place and
// freezes everything reachable from the roots: own property values,
// getters and setters (symbol-keyed too) and prototypes. The roots are
// the global object, the globals' original values and the intrinsics no
// property leads to.
const lockSource = `(function (taint) {
  "use strict";
  var O = Object, gOPN = O.getOwnPropertyNames, gOPS = O.getOwnPropertySymbols,
      gOPD = O.getOwnPropertyDescriptor, getProto = O.getPrototypeOf,
      freeze = O.freeze, isFrozen = O.isFrozen, defProp = O.defineProperty,
      FunctionProto = getProto(function () {}), SetCtor = Set, setHas = Set.prototype.has,
      setAdd = Set.prototype.add, global = globalThis;
  var roots = [
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
  ];
  var names = gOPN(global);
  for (var i = 0; i < names.length; i++) {
    var d = gOPD(global, names[i]);
    roots.push(d.value, d.get, d.set);
  }
  var standIns = [
    [O, "isFrozen"], [O, "isSealed"], [O, "isExtensible"],
    [O, "getOwnPropertyDescriptor"], [O, "getOwnPropertyDescriptors"],
    [FunctionProto, "constructor"]
  ];
  return function lock(consts) {
    roots = roots.concat(consts);
    for (var i = 0; i < standIns.length; i++) {
      var on = standIns[i][0], name = standIns[i][1], orig = on[name], fn = taint(name);
      defProp(fn, "name", {value: orig.name});
      defProp(fn, "length", {value: orig.length});
      if (name === "constructor") {
        defProp(fn, "prototype", {value: orig.prototype, writable: false, enumerable: false, configurable: false});
      }
      defProp(on, name, {value: fn});
    }
    var seen = new SetCtor(), stack = roots.slice();
    while (stack.length > 0) {
      var o = stack.pop();
      if (o === null || (typeof o !== "object" && typeof o !== "function") || setHas.call(seen, o)) continue;
      setAdd.call(seen, o);
      freeze(o);
      if (!isFrozen(o)) throw new TypeError("an object could not be frozen");
      var keys = gOPN(o).concat(gOPS(o));
      for (var k = 0; k < keys.length; k++) {
        var desc = gOPD(o, keys[k]);
        stack.push(desc.value, desc.get, desc.set);
      }
      stack.push(getProto(o));
    }
  };
})`

var lockProgram = sync.OnceValue(func() *goja.Program {
	return goja.MustCompile("lock.js", lockSource, true)
})

// prelude runs the lock's prelude in e's runtime and returns the lock.
// Each stand-in is a Go function that taints e and throws; since a
// stand-in interrupts the runtime too, even a codec that found a way to
// catch the exception would not go on.
func (e *engine) prelude(lock *goja.Program) (goja.Callable, error) {
	rt := e.rt
	taint := func(goja.FunctionCall) goja.Value {
		e.tainted = true
		rt.Interrupt(errTainted)
		panic(rt.NewTypeError("sensorgate: not available to a codec on a locked runtime"))
	}
	v, err := rt.RunProgram(lock)
	if err != nil {
		return nil, err
	}
	fn, _ := goja.AssertFunction(v)
	ret, err := fn(goja.Undefined(), rt.ToValue(func(goja.FunctionCall) goja.Value { return rt.ToValue(taint) }))
	if err != nil {
		return nil, err
	}
	locker, ok := goja.AssertFunction(ret)
	if !ok {
		return nil, errors.New("script: the lock's prelude returned no function")
	}
	return locker, nil
}

// reuseState is a codec's pool of locked runtimes and its record of how
// they fare.
type reuseState struct {
	mu    sync.Mutex
	idle  []*engine
	calls int // calls tried on a locked runtime
	fails int // of those, run again on a fresh runtime
	off   bool
}

// maxIdleLocked bounds the locked runtimes a codec keeps between calls:
// one per concurrent caller is all that is ever reused, and each holds
// every intrinsic of the engine (a few hundred KB).
const maxIdleLocked = 4

// take returns an idle locked runtime, or nil when the codec has none
// or does not use them.
func (r *reuseState) take() (e *engine, use bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off {
		return nil, false
	}
	if n := len(r.idle); n > 0 {
		e = r.idle[n-1]
		r.idle = r.idle[:n-1]
	}
	return e, true
}

// put returns e after a clean call.
func (r *reuseState) put(e *engine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.idle) < maxIdleLocked {
		r.idle = append(r.idle, e)
		return
	}
	e.close()
}

// failed records a call that went to a fresh runtime after the locked
// one; a codec that needs that more than a quarter of the time (after a
// few dozen calls) stops trying locked runtimes: each failure costs a
// second run.
func (r *reuseState) failed(e *engine, keep bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.fails++
	if r.calls >= 32 && r.fails*4 > r.calls {
		r.off = true
	}
	if keep && !r.off && len(r.idle) < maxIdleLocked {
		r.idle = append(r.idle, e)
		return
	}
	e.close()
}

// disable stops the codec using locked runtimes, for one it could not
// set up.
func (r *reuseState) disable() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.off = true
}

// newLockedEngine sets up a runtime for reuse: the strict compilation's
// top level, then the lock.
func (c *Codec) newLockedEngine() (*engine, error) {
	e, err := c.setUp(c.strictProg, c.constsProg)
	if err != nil {
		return nil, fmt.Errorf("script: codec %s: setting up a locked runtime: %w", c.file, err)
	}
	return e, nil
}
