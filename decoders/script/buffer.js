(function () {
  "use strict";
  class Buffer extends Uint8Array {}
  return Buffer;
})()
