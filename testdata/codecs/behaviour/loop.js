// Loops forever when the first byte is 0xff; otherwise echoes the length.
function decodeUplink(input) {
  if (input.bytes[0] === 0xff) {
    for (;;) {}
  }
  return { data: { length: input.bytes.length } };
}
