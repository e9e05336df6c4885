// Minimal fan-out server on Socket.IO 4 (npm socket.io), for bench/compare.sh. WebSocket transport only.
//   emit("sub", CH)           join room CH; answered emit("ok")
//   emit("pub", CH, PAYLOAD)  io.to(CH).emit("m", PAYLOAD): the packet is encoded once for the room
// Usage: node socketio-server.js PORT
'use strict';
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 8092);
const io = new Server({ transports: ['websocket'], perMessageDeflate: false, serveClient: false, maxHttpBufferSize: 1 << 20 });
io.on('connection', (socket) => {
  socket.on('sub', (ch) => {
    socket.join(ch);
    socket.emit('ok');
  });
  socket.on('pub', (ch, payload) => io.to(ch).emit('m', payload));
});
const httpServer = require('http').createServer();
io.attach(httpServer);
httpServer.listen({ host: '127.0.0.1', port, backlog: 4096 }, () => console.log(`socket.io listening on ${port}`));
