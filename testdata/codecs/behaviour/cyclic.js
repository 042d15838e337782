// The data refers to itself.
function decodeUplink(input) {
  var data = { a: 1 };
  data.self = data;
  return { data: data };
}
