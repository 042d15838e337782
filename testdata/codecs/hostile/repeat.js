// A 1 GiB string from one built-in call.
function decodeUplink(input) {
  var s = "x".repeat(1 << 30);
  return { data: { length: s.length } };
}
