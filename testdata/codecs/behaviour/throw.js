// Throws for any payload, as ChirpStack v3 codecs report errors.
function Decode(fPort, bytes, variables) {
  throw new Error("cannot read payload of " + bytes.length + " bytes");
}
