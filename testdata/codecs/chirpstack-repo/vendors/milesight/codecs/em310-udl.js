// Milesight EM310-UDL — ChirpStack v4 style (decodeUplink with
// variables), written for sensorgate's tests from the user guide's
// channel layout: [channel id][channel type][value], little-endian.
//
// Device variable "mount_height_mm" (optional): the sensor's height above
// the bin floor; with it the codec adds "fill_mm" = height - distance.

function decodeUplink(input) {
  var b = input.bytes;
  var d = {};
  for (var i = 0; i + 1 < b.length;) {
    var id = b[i], type = b[i + 1];
    i += 2;
    if (id === 0x01 && type === 0x75) {
      d.battery = b[i];
      i += 1;
    } else if (id === 0x03 && type === 0x82) {
      d.distance = b[i] | (b[i + 1] << 8);
      i += 2;
    } else if (id === 0x04 && type === 0x00) {
      d.tilt = b[i] === 0 ? "normal" : "tilt";
      i += 1;
    } else {
      break;
    }
  }
  var h = input.variables && input.variables.mount_height_mm;
  if (h !== undefined && d.distance !== undefined) {
    d.fill_mm = parseInt(h, 10) - d.distance;
  }
  return { data: d };
}
