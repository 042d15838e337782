// Dragino LHT65 — The Things Stack style (decodeUplink), written for
// sensorgate's tests from the user manual's fPort 2 layout: 11 bytes,
// big-endian; battery word (2 status bits, 14 bits mV), SHT temperature
// (int16 /100), SHT humidity (12 bits /10), external sensor type byte,
// external sensor data.

function word(b, i) { return (b[i] << 8) | b[i + 1]; }
function signed(v) { return v & 0x8000 ? v - 0x10000 : v; }

var modes = {
  4: "Interrupt Sensor send",
  5: "Illumination Sensor",
  6: "ADC Sensor",
  7: "Interrupt Sensor count",
  8: "Interrupt Sensor count",
  9: "DS18B20 & timestamp",
  15: "DS18B20ID"
};

function decodeUplink(input) {
  if (input.fPort !== 2) {
    return { errors: ["unknown FPort"] };
  }
  var b = input.bytes;
  if (b.length !== 11) {
    return { errors: ["frame has " + b.length + " bytes, want 11"] };
  }
  if (b[6] & 0x40) {
    return { errors: ["poll reply frames are not decoded"] };
  }
  var ext = b[6] & 0x0f;
  var d = {};
  if (ext === 9) {
    d.TempC_DS = signed(word(b, 0)) / 100;
    d.Bat_status = b[4] >> 6;
  } else {
    d.BatV = (word(b, 0) & 0x3fff) / 1000;
    d.Bat_status = b[0] >> 6;
  }
  if (ext !== 15) {
    d.TempC_SHT = signed(word(b, 2)) / 100;
    d.Hum_SHT = (word(b, 4) & 0x0fff) / 10;
  }
  if (b[6] & 0x80) d.No_connect = "Sensor no connection";
  if (modes[ext] !== undefined) d.Work_mode = modes[ext];
  switch (ext) {
    case 0: d.Ext_sensor = "No external sensor"; break;
    case 1:
      d.Ext_sensor = "Temperature Sensor";
      d.TempC_DS = signed(word(b, 7)) / 100;
      break;
    case 5: d.ILL_lx = word(b, 7); break;
    case 6: d.ADC_V = word(b, 7) / 1000; break;
    case 7: d.Exit_count = word(b, 7); break;
  }
  return { data: d };
}
