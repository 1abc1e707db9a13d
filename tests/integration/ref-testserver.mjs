#!/usr/bin/env node
// Reference implementation of the rp-testserver contract (see README.md in this folder),
// built on the Node `socket.io` 4.8 / `engine.io` 6.6 packages. The integration tests run
// against it when RP_TEST_SERVER=ref, to validate the tests themselves.
//
//   node ref-testserver.mjs [--listen HOST:PORT] [--transports polling,websocket]
//        [--ping-interval MS] [--ping-timeout MS] [--max-payload BYTES]
//        [--connect-timeout MS] [--max-queued BYTES] [--cors-origin ORIGIN[,ORIGIN...]]
//   node ref-testserver.mjs --product [--listen HOST:PORT]   (stands in for `ragpulse serve`)
//
// Prints exactly one line `listening on http://HOST:PORT` on stdout once ready.
import http from 'node:http';
import { createRequire } from 'node:module';
import { Server as SocketIOServer } from 'socket.io';

const require = createRequire(import.meta.url);
const engineio = require('engine.io');

function parseArgs(argv) {
  const o = {
    listen: '127.0.0.1:3000',
    transports: ['polling', 'websocket'],
    pingInterval: 300,
    pingTimeout: 200,
    maxPayload: 1000000,
    connectTimeout: 1000,
    maxQueued: 0,
    corsOrigins: null,
    product: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--listen': o.listen = val(); break;
      case '--transports': o.transports = val().split(',').filter(Boolean); break;
      case '--ping-interval': o.pingInterval = Number(val()); break;
      case '--ping-timeout': o.pingTimeout = Number(val()); break;
      case '--max-payload': o.maxPayload = Number(val()); break;
      case '--connect-timeout': o.connectTimeout = Number(val()); break;
      case '--max-queued': o.maxQueued = Number(val()); break; // no Node equivalent: accepted, ignored
      case '--cors-origin': o.corsOrigins = val().split(',').filter(Boolean); break;
      case '--product': o.product = true; break;
      case 'serve': break; // tolerate `serve` so the product command line can be passed through
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return o;
}

function log(obj) {
  process.stderr.write(JSON.stringify({ ts: Date.now(), ...obj }) + '\n');
}

const opts = parseArgs(process.argv.slice(2));
const idx = opts.listen.lastIndexOf(':');
const host = opts.listen.slice(0, idx);
const port = Number(opts.listen.slice(idx + 1));

const httpServer = http.createServer((req, res) => {
  if (opts.product && req.method === 'GET' && req.url.split('?')[0] === '/health') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', uptime_ms: Math.round(process.uptime() * 1000) }));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

const commonEngineOpts = {
  transports: opts.transports,
  pingInterval: opts.pingInterval,
  pingTimeout: opts.pingTimeout,
  maxHttpBufferSize: opts.maxPayload,
  // The websocket upgrade of the *other* endpoint must not be torn down by this one.
  destroyUpgrade: false,
};
if (opts.corsOrigins) {
  commonEngineOpts.cors = { origin: opts.corsOrigins, credentials: true };
}

// Refuse WebSocket upgrades that carry a disallowed Origin (the Node server does not do this
// by itself; the contract asks for it).
function originMiddleware(req, res, next) {
  if (opts.corsOrigins && req.headers.upgrade && req.headers.origin &&
      !opts.corsOrigins.includes(req.headers.origin)) {
    next(new Error('origin not allowed'));
    return;
  }
  next();
}

// --- Socket.IO -----------------------------------------------------------------------------
const io = new SocketIOServer(httpServer, {
  ...commonEngineOpts,
  path: '/socket.io/',
  serveClient: false,
  connectTimeout: opts.connectTimeout,
});
io.engine.use(originMiddleware);

function setupNamespace(nsp) {
  nsp.on('connection', (socket) => {
    log({ msg: 'connect', nsp: nsp.name, id: socket.id });
    socket.emit('auth', socket.handshake.auth ?? {});

    socket.on('message', (...args) => {
      socket.emit('message-back', ...args);
    });
    socket.on('message-with-ack', (...args) => {
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (ack) ack(...args);
    });
    socket.on('join', (room, ack) => {
      socket.join(String(room));
      if (typeof ack === 'function') ack(true);
    });
    socket.on('leave', (room, ack) => {
      socket.leave(String(room));
      if (typeof ack === 'function') ack(true);
    });
    socket.on('broadcast', (spec, ack) => {
      let op = nsp;
      if (spec && typeof spec.room === 'string') op = op.to(spec.room);
      if (spec && typeof spec.except === 'string') op = op.except(spec.except);
      op.emit(spec.event, spec.data);
      if (typeof ack === 'function') ack(true);
    });
    socket.on('ask', (x) => {
      socket.timeout(1000).emit('question', x, (err, y) => {
        if (err) socket.emit('answer-timeout');
        else socket.emit('answer', y);
      });
    });
    socket.on('disconnect-me', () => {
      socket.disconnect(true);
    });
    socket.on('whoami', (ack) => {
      if (typeof ack === 'function') ack(socket.id);
    });
    socket.on('ping', (ack) => {
      // product (`ragpulse serve`) contract
      if (opts.product && typeof ack === 'function') ack({ time: Date.now() });
    });
    socket.on('disconnect', (reason) => {
      log({ msg: 'disconnect', nsp: nsp.name, id: socket.id, reason });
    });
  });
}

if (opts.product) {
  for (const name of ['/', '/pipeline', '/google_drive', '/local_files']) setupNamespace(io.of(name));
} else {
  setupNamespace(io.of('/'));
  setupNamespace(io.of('/custom'));
  const priv = io.of('/private');
  priv.use((socket, next) => {
    const auth = socket.handshake.auth;
    if (auth && auth.token === 'secret') next();
    else next(new Error('not authorized'));
  });
  setupNamespace(priv);

  // --- raw Engine.IO echo endpoint at /engine.io/ --------------------------------------------
  const eio = new engineio.Server({ ...commonEngineOpts });
  eio.use(originMiddleware);
  eio.attach(httpServer, { path: '/engine.io/', destroyUpgrade: false });
  eio.on('connection', (sock) => {
    sock.on('message', (data) => sock.send(data));
  });
}

httpServer.on('error', (err) => {
  log({ msg: 'listen error', error: String(err) });
  process.exit(1);
});
httpServer.listen(port, host, () => {
  const addr = httpServer.address();
  process.stdout.write(`listening on http://${host}:${addr.port}\n`);
  log({ msg: 'listening', port: addr.port });
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
