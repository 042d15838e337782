// Test fixture: firmware 1 frames.
function decodeUplink(input) {
  return { data: { version: 1 } };
}
