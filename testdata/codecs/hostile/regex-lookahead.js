// Catastrophic backtracking behind a lookahead: goja hands regular
// expressions with lookaheads to its backtracking engine (regexp2), which
// never looks at goja's interrupt, so this runs for ages inside one call.
function decodeUplink(input) {
  var s = new Array(40).join("a") + "!";
  return { data: { match: /^(a+)+(?=b)$/.test(s) } };
}
