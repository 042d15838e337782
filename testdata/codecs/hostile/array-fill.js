// A billion-element array, filled: gigabytes in one built-in call.
function decodeUplink(input) {
  var a = new Array(1e9).fill(1);
  return { data: { length: a.length } };
}
