// The closing handshake of the WebSocket transport (RFC 6455 sections 5.5.1 and 7.4), from a
// raw WebSocket client on node:net that writes the close frames itself (client libraries
// refuse to send the invalid codes) and reads the exact bytes the server answers with, and
// from the stock `ws` client. A client's close is answered with a close frame, never a bare
// TCP close: its code echoed, 1000 when it carried none, 1002 (protocol error) when its code
// may not be on the wire (below 1000, 1004-1006, 1015, 1016-2999, 5000 up). The Engine.IO
// session ends either way.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { startSuiteServer, withTimeout } from './helpers.mjs';
import { T, request } from './hub-helpers.mjs';

/**
 * Opens an Engine.IO WebSocket session by hand on `port`; resolves with {sid, closeWith},
 * where closeWith(payload) sends a masked close frame with that payload and resolves with
 * {frame: [opcode, ...payload] of the server's close frame or null, eof: true} once the server
 * has closed the TCP connection.
 */
function rawSession(port) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let opened = false;
    let closeFrame = null;
    let onEnd = null;
    sock.on('error', reject);
    sock.on('close', () => onEnd?.({ frame: closeFrame, eof: true }));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        const head = buf.subarray(0, i).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(head)) return reject(new Error(`no upgrade: ${head}`));
        upgraded = true;
        buf = buf.subarray(i + 4);
      }
      // Server frames are unmasked and, here, short (< 126 bytes).
      while (buf.length >= 2 && buf.length >= 2 + (buf[1] & 0x7f)) {
        const op = buf[0] & 0x0f;
        const payload = buf.subarray(2, 2 + (buf[1] & 0x7f));
        buf = buf.subarray(2 + payload.length);
        if (op === 0x8) closeFrame = [op, ...payload];
        if (op === 0x1 && !opened && payload[0] === 0x30) { // "0{...}": the Engine.IO open packet
          opened = true;
          const { sid } = JSON.parse(payload.subarray(1).toString());
          resolve({
            sid,
            closeWith(bytes) {
              const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
              const p = Buffer.from(bytes);
              const masked = Buffer.from(p.map((b, k) => b ^ mask[k % 4]));
              sock.write(Buffer.concat([Buffer.from([0x88, 0x80 | p.length]), mask, masked]));
              return withTimeout(new Promise((r) => { onEnd = r; }), T, 'the server closing the connection');
            },
          });
        }
      }
    });
    sock.write('GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n'
      + 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
      + 'Sec-WebSocket-Version: 13\r\n\r\n');
  }), T, 'a raw WebSocket session');
}

const code = (c, reason = '') => [c >> 8, c & 0xff, ...Buffer.from(reason)];
const closeFrame = (c) => [0x8, c >> 8, c & 0xff];

describe('a client\'s WebSocket close is answered with a close frame', () => {
  let srv;
  before(async () => { srv = await startSuiteServer(['--store', 'memory'], { product: true }); });
  after(() => srv?.stop());

  /** The Engine.IO session `sid` is gone: a polling request for it is refused. */
  async function assertSessionGone(sid) {
    const r = await request(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assert.equal(r.status, 400, `session ${sid} still answers: ${r.status} ${r.text}`);
  }

  const CASES = [
    ['no payload (1005, "no status")', [], closeFrame(1000)],
    ['1000', code(1000), closeFrame(1000)],
    ['1001 with a reason', code(1001, 'bye é'), closeFrame(1001)],
    ['3000', code(3000), closeFrame(3000)],
    ['4999', code(4999), closeFrame(4999)],
    ['0', code(0), closeFrame(1002)],
    ['999', code(999), closeFrame(1002)],
    ['1004 (reserved)', code(1004), closeFrame(1002)],
    ['1005 on the wire', code(1005), closeFrame(1002)],
    ['1006 on the wire', code(1006), closeFrame(1002)],
    ['1015 on the wire', code(1015), closeFrame(1002)],
    ['1016', code(1016), closeFrame(1002)],
    ['2999', code(2999), closeFrame(1002)],
    ['5000', code(5000), closeFrame(1002)],
  ];
  for (const [name, payload, want] of CASES) {
    test(`close ${name} → close frame ${want[1] << 8 | want[2]}, then the connection ends`, async () => {
      const s = await rawSession(srv.port);
      const { frame, eof } = await s.closeWith(payload);
      assert.deepEqual(frame, want, `answered with ${JSON.stringify(frame)} (null: a bare TCP close)`);
      assert.equal(eof, true);
      await assertSessionGone(s.sid);
    });
  }

  test('the stock ws client sees its close answered (1000 or its code), not 1006', async () => {
    for (const c of [undefined, 1000, 4000]) {
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`);
      await withTimeout(new Promise((resolve, reject) => { ws.once('message', resolve); ws.once('error', reject); }), T, 'open packet');
      const closed = withTimeout(new Promise((resolve) => ws.once('close', (got) => resolve(got))), T, 'close');
      ws.close(c);
      assert.equal(await closed, c ?? 1000, `ws.close(${c}): the code of the server's close frame (1006: none came)`);
    }
  });
});
