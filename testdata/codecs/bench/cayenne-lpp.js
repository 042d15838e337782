// Cayenne LPP, The Things Stack style (decodeUplink + normalizeUplink),
// written for sensorgate's end-to-end benchmark: with
// `sensorgate-bench -scripts testdata/codecs/bench` it replaces the
// built-in cayenne-lpp decoder, so the run measures the JavaScript engine
// on the simulated fleet's payloads. Layout from the Cayenne LPP
// documentation: per value a channel byte, a type byte and a big-endian
// value; objects keyed as ChirpStack's LPP codec keys them.

var TYPES = {
  0x67: { name: "temperatureSensor", size: 2, signed: true, div: 10 },
  0x68: { name: "humiditySensor", size: 1, signed: false, div: 2 },
  0x73: { name: "barometer", size: 2, signed: false, div: 10 }
};

function decodeUplink(input) {
  var bytes = input.bytes;
  var data = {};
  var i = 0;
  while (i < bytes.length) {
    if (i + 2 > bytes.length) {
      return { errors: ["record header cut off at byte " + i] };
    }
    var channel = bytes[i];
    var type = TYPES[bytes[i + 1]];
    if (!type) {
      return { errors: ["unsupported LPP type 0x" + bytes[i + 1].toString(16) + " at byte " + (i + 1)] };
    }
    i += 2;
    if (i + type.size > bytes.length) {
      return { errors: [type.name + " on channel " + channel + " cut off"] };
    }
    var v = 0;
    for (var k = 0; k < type.size; k++) {
      v = v * 256 + bytes[i + k];
    }
    if (type.signed && v >= 1 << (8 * type.size - 1)) {
      v -= 1 << (8 * type.size);
    }
    i += type.size;
    if (!data[type.name]) {
      data[type.name] = {};
    }
    data[type.name][String(channel)] = v / type.div;
  }
  return { data: data };
}

// normalizeUplink takes the first channel of each kind.
function first(group) {
  for (var ch in group) {
    return group[ch];
  }
  return undefined;
}

function normalizeUplink(input) {
  var d = input.data;
  var air = {};
  if (d.temperatureSensor) air.temperature = first(d.temperatureSensor);
  if (d.humiditySensor) air.relativeHumidity = first(d.humiditySensor);
  if (d.barometer) air.pressure = first(d.barometer);
  return { data: { air: air } };
}
