// Tries, one per call as its first byte says, a way to keep state or
// change the runtime, then reports what it sees of the state: on a
// locked runtime (decoders/script/reuse.go) every attempt must either
// fail there (and the call run again on a fresh runtime) or change
// nothing, so each call's output is what a fresh runtime gives. It
// passes the reuse check, so its calls do go to locked runtimes (which
// is why it keeps its counter in an object: a codec that assigns a
// top-level variable does not).
var state = { count: 0 };
var table = [1, 2, 3];
var conf = { a: 1, nested: { b: 2 } };
const names = ["x", "y"];
function helper(v) { return v + 1; }
var fns = { twice: function (v) { return v * 2; } };

var attempts = [
  function () { state.count++; },
  function () { table.push(4); },
  function () { table[0] = 9; },
  function () { table.length = 0; },
  function () { table.sort(function (a, b) { return b - a; }); },
  function () { conf.a = 5; },
  function () { conf.nested.b = 7; },
  function () { delete conf.a; },
  function () { names[1] = "z"; },
  function () { helper.cache = 1; },
  function () { helper.prototype.p = 1; },
  function () { fns.twice = function (v) { return v; }; },
  function () { Object.prototype.polluted = 1; },
  function () { Array.prototype.polluted = 1; },
  function () { [].__proto__.viaProto = 1; },
  function () { ({}).constructor.prototype.viaCtor = 1; },
  function () { Object.defineProperty(Object.prototype, "defined", { value: 1, enumerable: false }); },
  function () { Object.assign(Math, { extra: 1 }); },
  function () { Math.max = function () { return -1; }; },
  function () { String.prototype.trim = function () { return "trimmed"; }; },
  function () { JSON.stringify = function () { return "{}"; }; },
  function () { implicitGlobal = 1; },
  function () { Object.setPrototypeOf(conf, null); },
  function () { Object.freeze(conf); },
  function () { Object.preventExtensions(table); },
  function () { ({})["constr" + "uctor"]["isFro" + "zen"](conf); },
  function () { ({})["constr" + "uctor"]["getOwnPropertyDescriptor"](conf, "a"); },
  function () { helper["constr" + "uctor"]("return 1")(); },
  function () { var it = [][Symbol.iterator](); Object.getPrototypeOf(it).iterLeak = 1; },
  function () { var it = [][Symbol.iterator](); Object.getPrototypeOf(Object.getPrototypeOf(it)).iterLeak = 1; },
  function () { Object.getPrototypeOf("ab".matchAll(/a/g)).rxLeak = 1; },
  function () { Object.getPrototypeOf(new Map().entries()).mapLeak = 1; },
  function () { Symbol.prototype.symLeak = 1; },
  function () { Date.prototype.toISOString = function () { return "then"; }; },
  function () { Number.prototype.toFixed = function () { return "fixed"; }; },
  function () { Error.prototype.name = "Leaked"; },
  function () { RegExp.prototype.test = function () { return true; }; },
  function () { Object.defineProperty(helper, "name", { value: "renamed" }); },
  function () { table.reverse(); },
  function () { table.fill(0); },
  function () { table.copyWithin(0, 1); },
  function () { table.splice(0, 1); },
  function () { table.shift(); },
  function () { Array.prototype.push.call(names, "w"); },
  function () { Object.getPrototypeOf(function () {}).leak = 1; },
  function () { var e = new Error("x"); e.name = "Custom"; state.count = e.name.length; },
  function () { var o = {}; o.toString = function () { return "own"; }; state.count = String(o).length; },
  function () { Map.prototype.set.call(Map.prototype, "k", 1); },
  function () { Set.prototype.add.call(Set.prototype, 1); },
  function () { Date.prototype.setTime.call(Date.prototype, 5); },
  function () { RegExp.prototype.compile.call(RegExp.prototype, "x"); },
  function () { Array.prototype.push.call(Array.prototype, 1); },
  function () { state.count = Array.prototype.length + Object.keys(Array.prototype).length; },
  function () { var t = names; t.push("pushed"); }
];

function decodeUplink(input) {
  var b = input.bytes;
  if (b.length > 0) {
    attempts[b[0] % attempts.length]();
  }
  var it = [][Symbol.iterator]();
  return {
    data: {
      count: state.count,
      table: table.join(","),
      tableFrozen: Object.isFrozen === undefined ? "none" : typeof Object.isFrozen,
      a: conf.a,
      b: conf.nested ? conf.nested.b : null,
      names: names.join(","),
      cache: typeof helper.cache,
      p: typeof helper.prototype.p,
      twice: fns.twice(3),
      polluted: typeof ({}).polluted + typeof [].polluted + typeof [].viaProto + typeof ({}).viaCtor + typeof ({}).defined,
      math: typeof Math.extra + Math.max(1, 2),
      trim: " t ".trim(),
      json: JSON.stringify({ k: 1 }),
      implicit: typeof implicitGlobal,
      proto: Object.getPrototypeOf(conf) === null ? "null" : "object",
      iter: typeof it.iterLeak + typeof Object.getPrototypeOf(Object.getPrototypeOf(it)).iterLeak,
      rx: typeof Object.getPrototypeOf("ab".matchAll(/a/g)).rxLeak,
      map: typeof Object.getPrototypeOf(new Map().entries()).mapLeak,
      sym: typeof Symbol.prototype.symLeak,
      iso: new Date(0).toISOString(),
      fixed: (1.5).toFixed(1),
      errName: new Error("e").name,
      rxTest: /a/.test("b"),
      helperName: helper.name,
      fnLeak: typeof helper.leak,
      ownNames: [helper, conf, table, fns.twice, Math, [].constructor].map(function (o) {
        return Object.getOwnPropertyNames(o).length + ":" + Object.keys(o).join("/");
      }).join(","),
      second: b.length > 1 ? b[1] : null
    }
  };
}
