// Unbounded recursion.
function down(n) {
  return down(n + 1) + 1;
}

function decodeUplink(input) {
  return { data: { depth: down(0) } };
}
