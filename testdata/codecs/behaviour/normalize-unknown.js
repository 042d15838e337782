// normalizeUplink names a path the catalogue does not have.
function decodeUplink(input) {
  return { data: { flux: input.bytes[0] } };
}
function normalizeUplink(input) {
  return { data: { air: { flux: input.data.flux } } };
}
