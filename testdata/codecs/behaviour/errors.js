// Reports errors the way The Things Stack codecs do.
function decodeUplink(input) {
  return { data: {}, errors: ["first problem", "second problem"] };
}
