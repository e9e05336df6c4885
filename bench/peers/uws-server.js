// Minimal fan-out server on uWebSockets.js (npm @trufflesuite/uws-js-unofficial, prebuilt for Node 20),
// for bench/compare.sh. Same tiny protocol as ws-server.js; publication through uWS's own pub/sub
// (app.publish: one copy of the message, corked writes per socket).
// The package silently falls back to a pure-JS implementation when its native module does not load, so
// this loads the .node file directly and refuses to run without it.
// Usage: node uws-server.js PORT
'use strict';
const path = require('path');

const file = path.join(__dirname, 'node_modules/@trufflesuite/uws-js-unofficial/binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
const uWS = require(file);
if (typeof uWS.App !== 'function' || typeof uWS.us_listen_socket_close !== 'function') {
  console.error(`uws: ${file} is not the native uWebSockets.js build`);
  process.exit(1);
}

const port = Number(process.argv[2] || 8091);
const dec = new TextDecoder();
const app = uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1 << 20,
  // Like rtsync's limits.max_outbound: a subscriber more than 1 MiB behind is closed.
  maxBackpressure: 1 << 20,
  closeOnBackpressureLimit: true,
  idleTimeout: 120,
  message: (ws, message) => {
    const bytes = new Uint8Array(message);
    if (bytes[0] === 0x73 /* s */ && bytes[3] === 0x20) {
      ws.subscribe(dec.decode(bytes.subarray(4)));
      ws.send('ok');
    } else if (bytes[0] === 0x70 /* p */ && bytes[3] === 0x20) {
      const sp = bytes.indexOf(0x20, 4);
      app.publish(dec.decode(bytes.subarray(4, sp)), bytes.subarray(sp + 1), false);
    }
  },
});
app.listen('127.0.0.1', port, (token) => {
  if (!token) {
    console.error(`uws: cannot listen on ${port}`);
    process.exit(1);
  }
  console.log(`uws (native ${path.basename(file)}) listening on ${port}`);
});
