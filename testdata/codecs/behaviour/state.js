// Keeps a counter across calls in a global, to show runtimes are reused.
var calls = 0;
function decodeUplink(input) {
  calls++;
  return { data: { calls: calls, first: input.bytes[0] } };
}
