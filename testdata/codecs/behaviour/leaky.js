// Keeps state every way a codec can, to show that none of it reaches the
// next call: a global counter, a cached last frame, an implicit global,
// and changes to built-in prototypes and globalThis.
var calls = 0;
var last = {};
function decodeUplink(input) {
  calls++;
  implicitCount = (typeof implicitCount === "number" ? implicitCount : 0) + 1;
  Object.prototype.seen = (Object.prototype.seen || 0) + 1;
  globalThis.viaGlobal = (globalThis.viaGlobal || 0) + 1;
  var key = "b" + input.bytes[0];
  last[key] = input.bytes.length > 1 ? input.bytes[1] : null;
  var frame = {};
  for (var k in last) {
    if (Object.prototype.hasOwnProperty.call(last, k)) {
      frame[k] = last[k];
    }
  }
  return {
    data: {
      calls: calls,
      implicit: implicitCount,
      seen: Object.prototype.seen,
      viaGlobal: globalThis.viaGlobal,
      frame: frame,
      dev: input.variables.dev || ""
    }
  };
}
