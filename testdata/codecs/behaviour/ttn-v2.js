// The Things Network v2 style: Decoder(bytes, port) returns the data.
function Decoder(bytes, port) {
  return { port: port, first: bytes[0], half: bytes[0] / 2 };
}
