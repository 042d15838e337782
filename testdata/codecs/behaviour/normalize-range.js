// normalizeUplink: two measurements, one with a humidity out of range;
// the second carries its own time.
function decodeUplink(input) {
  return { data: { t: 21.5, rh: input.bytes[0] } };
}
function normalizeUplink(input) {
  return {
    data: [
      { air: { temperature: input.data.t, relativeHumidity: input.data.rh } },
      { air: { temperature: 20 }, time: "2024-05-01T10:00:00Z" }
    ],
    warnings: ["normalized by the test codec"]
  };
}
