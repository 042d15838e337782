// Decodes, with warnings.
function decodeUplink(input) {
  return { data: { level: input.bytes[0] }, warnings: ["battery low", "clock not set"] };
}
