// The same pattern without lookahead or backreference: goja uses Go's
// linear-time engine for it, so this returns at once (no match).
function decodeUplink(input) {
  var s = new Array(40).join("a") + "!";
  return { data: { match: /^(a+)+$/.test(s) } };
}
