// SPDX-License-Identifier: MIT
// The bench/ relay contract on the reference server, Node.js socket.io 4.8 with its defaults
// (both transports, default ping and buffer settings, the default in-memory adapter).
// On namespace "/": `subscribe` {room} joins the room; `publish` {room, ...} broadcasts
// `file:progress` with that same object to the room. Both ack `true` when asked.
// Usage: node bench/node-relay.mjs PORT   (listens on 127.0.0.1 only)
import http from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] || 8105);
const httpServer = http.createServer();
const io = new Server(httpServer, {});

io.on("connection", (socket) => {
  socket.on("subscribe", (msg, ack) => {
    if (msg && typeof msg.room === "string") socket.join(msg.room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("publish", (msg, ack) => {
    if (msg && typeof msg.room === "string") io.to(msg.room).emit("file:progress", msg);
    if (typeof ack === "function") ack(true);
  });
});

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${port}`);
});
