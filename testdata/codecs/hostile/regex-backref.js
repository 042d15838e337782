// Catastrophic backtracking with a backreference (regexp2 again).
function decodeUplink(input) {
  var s = new Array(40).join("a") + "!";
  return { data: { match: /^(a+)+\1b$/.test(s) } };
}
