// Returns the data without the {data} wrapper's object shape.
function decodeUplink(input) {
  return 42;
}
