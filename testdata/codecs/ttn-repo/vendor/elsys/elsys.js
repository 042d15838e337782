// Elsys ERS CO2 — The Things Stack style (decodeUplink + normalizeUplink).
// Written for sensorgate's tests from the Elsys payload document's layout
// (a sequence of [type][value], no length byte; the type fixes the size,
// multi-byte values big-endian).

// Readers by value size; each returns a number.
function u8(b, i) { return b[i]; }
function u16(b, i) { return (b[i] << 8) | b[i + 1]; }
function s16(b, i) { var v = u16(b, i); return v > 0x7fff ? v - 0x10000 : v; }
function u32(b, i) { return ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]); }

// types[t] = [value bytes, function (data, bytes, offset)]
var types = {
  0x01: [2, function (d, b, i) { d.temperature = s16(b, i) / 10; }],
  0x02: [1, function (d, b, i) { d.humidity = u8(b, i); }],
  0x04: [2, function (d, b, i) { d.light = u16(b, i); }],
  0x05: [1, function (d, b, i) { d.motion = u8(b, i); }],
  0x06: [2, function (d, b, i) { d.co2 = u16(b, i); }],
  0x07: [2, function (d, b, i) { d.vdd = u16(b, i); }],
  0x0b: [4, function (d, b, i) { d.pulseAbs = u32(b, i); }],
  0x1c: [2, function (d, b, i) { d.tvoc = u16(b, i); }]
};

function decodeUplink(input) {
  var b = input.bytes;
  var data = {};
  var warnings = [];
  if (b.length === 0) {
    return { errors: ["empty payload"] };
  }
  var i = 0;
  while (i < b.length) {
    var t = types[b[i]];
    if (!t) {
      if (i === 0) {
        return { errors: ["unknown data type 0x" + b[i].toString(16)] };
      }
      warnings.push("unknown data type 0x" + b[i].toString(16) + " at byte " + i + ", rest ignored");
      break;
    }
    if (i + 1 + t[0] > b.length) {
      return { errors: ["data type 0x" + b[i].toString(16) + " cut off"] };
    }
    t[1](data, b, i + 1);
    i += 1 + t[0];
  }
  return { data: data, warnings: warnings };
}

function normalizeUplink(input) {
  var d = input.data;
  var air = {};
  var out = {};
  if (d.temperature !== undefined) air.temperature = d.temperature;
  if (d.humidity !== undefined) air.relativeHumidity = d.humidity;
  if (d.light !== undefined) air.lightIntensity = d.light;
  if (d.co2 !== undefined) air.co2 = d.co2;
  if (Object.keys(air).length > 0) out.air = air;
  if (d.motion !== undefined) out.action = { motion: { count: d.motion } };
  if (d.vdd !== undefined) out.battery = d.vdd / 1000;
  return { data: out };
}
