// Test fixture: firmware 2 frames.
function decodeUplink(input) {
  return { data: { version: 2, sum: input.bytes[0] + input.bytes[1] } };
}
