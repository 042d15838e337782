// Returns every kind of value a codec might, to check the conversion to Go.
function decodeUplink(input) {
  var data = {
    int: 42,
    negative: -7,
    float: 0.1 + 0.2,
    big: 4294967296,
    text: "x",
    flag: true,
    none: null,
    nan: NaN,
    nested: { list: [1, 2.5, "three", { four: 4 }], empty: {} },
    typed: new Uint8Array([1, 2, 255]),
    when: new Date(Date.UTC(2024, 4, 1, 10, 0, 0, 123)),
    recv: input.recvTime.toISOString(),
    fn: function () { return 1; },
    fport: input.fPort,
    vars: input.variables
  };
  console.log("decoding", input.bytes.length, "bytes");
  return { data: data };
}
