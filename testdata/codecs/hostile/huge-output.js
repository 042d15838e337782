// An output object far larger than any uplink's: 50,000 keys of 100
// characters each.
function decodeUplink(input) {
  var data = {};
  var pad = new Array(101).join("v");
  for (var i = 0; i < 50000; i++) {
    data["k" + i] = pad;
  }
  return { data: data };
}
