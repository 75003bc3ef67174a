'use strict';
// A minimal broadcast chat server on `ws`, written the usual way: the comparison peer for
// `chat-bench --peer node-ws`. Rooms by path (/ws/<room>), member name from ?name=.
// A text frame {"id","text"} goes to every member of the room, the sender included.
const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

const flag = process.argv.indexOf('--port');
const port = Number(flag > 0 ? process.argv[flag + 1] : process.env.PORT || 4100);
const rooms = new Map(); // room -> Set of sockets

const server = http.createServer((req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server });

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://localhost');
  const room = url.pathname.match(/^\/ws\/([^/]+)$/)?.[1];
  if (!room) return ws.close(1008, 'no room');
  const name = url.searchParams.get('name') || 'anonymous';
  if (!rooms.has(room)) rooms.set(room, new Set());
  const members = rooms.get(room);
  members.add(ws);

  ws.on('error', console.error);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof msg?.id !== 'string' || typeof msg.text !== 'string') return;
    const out = JSON.stringify({ name, id: msg.id, text: msg.text });
    for (const peer of members) if (peer.readyState === WebSocket.OPEN) peer.send(out);
  });
  ws.on('close', () => {
    members.delete(ws);
    if (members.size === 0 && rooms.get(room) === members) rooms.delete(room);
  });
});

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
