// Returns an array whose length is a billion though it holds one element,
// where fPort says: 1 in data, 2 in normalizeUplink's data, 3 as errors.
// Converting it element by element would never end (and runs outside the
// time-boxed VM); the engine must refuse it.
function sparse() {
  var a = [];
  a[1e9] = "x";
  return a;
}

function decodeUplink(input) {
  switch (input.fPort) {
    case 1:
      return { data: { values: sparse() } };
    case 3:
      return { errors: sparse() };
  }
  return { data: { ok: true } };
}

function normalizeUplink(input) {
  return { data: { air: { temperature: 20 }, extra: sparse() } };
}
