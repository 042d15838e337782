// Decentlab DL-PM — ChirpStack v3 style (Decode(fPort, bytes, variables)),
// written for sensorgate's tests from the Decentlab protocol version 2
// layout: version (1 byte, 2), device id (uint16), sensor-group flags
// (uint16), then per set flag, in bit order, the group's uint16 words; all
// big-endian. Each value is {displayName, unit, value}.

var MASS = "\u00b5g\u22c5m\u207b\u00b3";
var NUMBER = "1\u22c5cm\u207b\u00b3";

var groups = [
  { words: 1, values: [
    ["battery_voltage", "Battery voltage", "V", function (x) { return x[0] / 1000; }]
  ] },
  { words: 10, values: [
    ["pm1_0_mass_concentration", "PM1.0 mass concentration", MASS, function (x) { return x[0] / 10; }],
    ["pm2_5_mass_concentration", "PM2.5 mass concentration", MASS, function (x) { return x[1] / 10; }],
    ["pm4_mass_concentration", "PM4 mass concentration", MASS, function (x) { return x[2] / 10; }],
    ["pm10_mass_concentration", "PM10 mass concentration", MASS, function (x) { return x[3] / 10; }],
    ["typical_particle_size", "Typical particle size", "nm", function (x) { return x[4]; }],
    ["pm0_5_number_concentration", "PM0.5 number concentration", NUMBER, function (x) { return x[5] / 10; }],
    ["pm1_0_number_concentration", "PM1.0 number concentration", NUMBER, function (x) { return x[6] / 10; }],
    ["pm2_5_number_concentration", "PM2.5 number concentration", NUMBER, function (x) { return x[7] / 10; }],
    ["pm4_number_concentration", "PM4 number concentration", NUMBER, function (x) { return x[8] / 10; }],
    ["pm10_number_concentration", "PM10 number concentration", NUMBER, function (x) { return x[9] / 10; }]
  ] },
  { words: 2, values: [
    ["air_temperature", "Air temperature", "\u00b0C", function (x) { return 175.72 * x[0] / 65536 - 46.85; }],
    ["air_humidity", "Air humidity", "%", function (x) { return 125 * x[1] / 65536 - 6; }]
  ] },
  { words: 1, values: [
    ["barometric_pressure", "Barometric pressure", "Pa", function (x) { return x[0] * 2; }]
  ] }
];

function Decode(fPort, bytes, variables) {
  if (bytes.length < 5) {
    throw new Error("frame of " + bytes.length + " bytes is shorter than the header");
  }
  if (bytes[0] !== 2) {
    throw new Error("protocol version " + bytes[0] + " doesn't match v2");
  }
  var out = { protocol_version: 2, device_id: (bytes[1] << 8) | bytes[2] };
  var flags = (bytes[3] << 8) | bytes[4];
  var pos = 5;
  for (var g = 0; g < groups.length; g++) {
    if (!(flags & (1 << g))) continue;
    var group = groups[g];
    if (pos + 2 * group.words > bytes.length) {
      throw new Error("sensor group " + g + " cut off");
    }
    var x = [];
    for (var w = 0; w < group.words; w++, pos += 2) {
      x.push((bytes[pos] << 8) | bytes[pos + 1]);
    }
    for (var v = 0; v < group.values.length; v++) {
      var def = group.values[v];
      out[def[0]] = { displayName: def[1], unit: def[2], value: def[3](x) };
    }
  }
  return out;
}
