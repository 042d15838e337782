// Test fixture: returns the first byte as the level.
function decodeUplink(input) {
  return { data: { level: input.bytes[0] } };
}
