// Minimal fan-out server on `ws` (npm), for bench/compare.sh. Tiny text protocol:
//   "sub CH"          subscribe; answered "ok"
//   "pub CH PAYLOAD"  PAYLOAD to every subscriber of CH (one Buffer, shared by every send)
// Usage: node ws-server.js PORT
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8090);
const channels = new Map(); // name -> Set of sockets

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false, backlog: 4096 });
wss.on('connection', (ws) => {
  const mine = [];
  ws.on('message', (data) => {
    // data is a Buffer; the command word and the channel are ASCII.
    if (data[0] === 0x73 /* s */ && data.toString('latin1', 0, 4) === 'sub ') {
      const ch = data.toString('latin1', 4);
      let set = channels.get(ch);
      if (!set) channels.set(ch, (set = new Set()));
      set.add(ws);
      mine.push(ch);
      ws.send('ok');
    } else if (data[0] === 0x70 /* p */ && data.toString('latin1', 0, 4) === 'pub ') {
      const sp = data.indexOf(0x20, 4);
      const set = channels.get(data.toString('latin1', 4, sp));
      if (!set) return;
      const payload = data.subarray(sp + 1);
      for (const peer of set) peer.send(payload, { binary: false });
    }
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    for (const ch of mine) {
      const set = channels.get(ch);
      if (set) {
        set.delete(ws);
        if (set.size === 0) channels.delete(ch);
      }
    }
  });
});
wss.on('listening', () => console.log(`ws listening on ${port}`));
