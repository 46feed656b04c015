'use strict';
// The benchmark peer: what a typical developer deploys for chat. socket.io 4 with the Redis adapter,
// default options, a room per user ("u:<id>") and per group ("g:<id>"), acks on sends, stores nothing.
//
// Protocol (see docs/benchmarks.md):
//   handshake auth {user: "<id>"}         -> socket joins "u:<id>"; missing user -> connect_error
//   "join" {group} + ack                  -> socket joins "g:<group>", ack {ok: true}
//   "send" {to | group, id, body, t} + ack -> "msg" {from, to | group, id, body, t} emitted to the
//                                            room (never back to the sending socket), ack {ok: true}
// Usage: node server.js PORT REDIS_PORT [REDIS_HOST]
const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');

const port = Number(process.argv[2]);
const redisPort = Number(process.argv[3]);
const redisHost = process.argv[4] || '127.0.0.1';
if (!port || !redisPort) {
  console.error('usage: node server.js PORT REDIS_PORT [REDIS_HOST]');
  process.exit(2);
}

const httpServer = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
    return;
  }
  // socket.io answers its own path; everything else is not found.
  if (!req.url.startsWith('/socket.io/')) {
    res.writeHead(404);
    res.end();
  }
});

async function main() {
  const pub = createClient({ socket: { host: redisHost, port: redisPort } });
  const sub = pub.duplicate();
  pub.on('error', (e) => console.error('redis pub:', e.message));
  sub.on('error', (e) => console.error('redis sub:', e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const io = new Server(httpServer, { adapter: createAdapter(pub, sub) });

  io.use((socket, next) => {
    const user = socket.handshake.auth && socket.handshake.auth.user;
    if (typeof user !== 'string' || user.length === 0 || user.length > 64) {
      return next(new Error('auth.user required'));
    }
    socket.data.user = user;
    next();
  });

  io.on('connection', (socket) => {
    socket.join('u:' + socket.data.user);

    socket.on('join', (req, ack) => {
      if (typeof ack !== 'function') return;
      if (!req || (typeof req.group !== 'string' && typeof req.group !== 'number')) {
        return ack({ ok: false, error: 'group required' });
      }
      socket.join('g:' + req.group);
      ack({ ok: true });
    });

    socket.on('send', (req, ack) => {
      if (typeof ack !== 'function') return;
      if (!req) return ack({ ok: false, error: 'body required' });
      const msg = { from: socket.data.user, id: req.id, body: req.body, t: req.t };
      let room;
      if (req.to !== undefined) {
        room = 'u:' + req.to;
        msg.to = req.to;
      } else if (req.group !== undefined) {
        room = 'g:' + req.group;
        msg.group = req.group;
      } else {
        return ack({ ok: false, error: 'to or group required' });
      }
      socket.to(room).emit('msg', msg);
      ack({ ok: true });
    });
  });

  httpServer.listen(port, '127.0.0.1', () => console.log(`ready port=${port} pid=${process.pid}`));

  const stop = () => {
    io.close();
    Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e) => {
  console.error('fatal:', e);
  process.exit(1);
});
