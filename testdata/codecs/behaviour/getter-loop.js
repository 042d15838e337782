// The data has a getter that never returns: reading the result must be
// time-boxed too.
function decodeUplink(input) {
  var data = {};
  Object.defineProperty(data, "trap", { enumerable: true, get: function () { for (;;) {} } });
  return { data: data };
}
