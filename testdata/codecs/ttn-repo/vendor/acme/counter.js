// Test fixture: numbers its frames in a global, so its output depends on
// what was decoded before in the same runtime.
var sequence = 0;
function decodeUplink(input) {
  sequence++;
  return { data: { reading: input.bytes[1], sequence: sequence } };
}
