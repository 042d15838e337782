// An endless loop that catches whatever interrupts it and starts again
// from its finally block.
function decodeUplink(input) {
  for (;;) {
    try {
      for (;;) {}
    } catch (e) {
      continue;
    } finally {
      for (;;) {}
    }
  }
}
