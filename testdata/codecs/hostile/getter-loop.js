// A getter that never returns, called while the output is converted.
function decodeUplink(input) {
  var data = { ok: 1 };
  Object.defineProperty(data, "trap", { enumerable: true, get: function () { while (true) {} } });
  return { data: data };
}
