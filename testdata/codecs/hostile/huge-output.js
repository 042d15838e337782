// An output far larger than any uplink's: 400 keys holding a
// 10,000-character string each, 4 MB once converted.
function decodeUplink(input) {
  var data = {};
  var pad = new Array(10001).join("v");
  for (var i = 0; i < 400; i++) {
    data["k" + i] = pad;
  }
  return { data: data };
}
