// Test fixture: a syntax error.
function decodeUplink(input) {
  return { data: {
}
