// The benchmark relay (bench/relay.c, what scripts/bench-relay runs) with stock
// socket.io-client peers: `publish` reaches the room's subscribers as `file:progress` with the
// same object, binary attachments included and byte for byte, and never the publisher itself
// when it is not in the room.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { USE_REF, connect, startServer, waitUntil } from './helpers.mjs';

const T = 5000;
const relay = () => startServer([], { bin: 'rp-bench-relay' });

test('publish with Buffers: subscribers receive them intact (not placeholders)', { skip: USE_REF && 'the relay is a ragpulse binary' }, async () => {
  const srv = await relay();
  const sub = await connect(srv.url, { transports: ['websocket'] });
  const pub = await connect(srv.url, { transports: ['websocket'] });
  assert.equal(await sub.timeout(T).emitWithAck('subscribe', { room: 'r1' }), true);
  const got = [];
  sub.on('file:progress', (m) => got.push(m));
  pub.on('file:progress', (m) => assert.fail(`the publisher is not in the room: ${JSON.stringify(m)}`));

  const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)); // 0x00..0xff
  const second = Buffer.from('second attachment \u00e9', 'utf8');
  assert.equal(await pub.timeout(T).emitWithAck('publish', { room: 'r1', seq: 1, data: bytes, nested: { more: [second] } }), true);
  assert.equal(await pub.timeout(T).emitWithAck('publish', { room: 'r1', seq: 2, text: 'plain json' }), true);
  await waitUntil(() => got.length === 2, T, 'both messages');

  const [bin, plain] = got;
  assert.equal(bin.room, 'r1');
  assert.equal(bin.seq, 1);
  assert.ok(Buffer.isBuffer(bin.data), `data arrived as ${JSON.stringify(bin.data)}`);
  assert.ok(bin.data.equals(bytes), 'first attachment byte for byte');
  assert.ok(Buffer.isBuffer(bin.nested.more[0]), `nested arrived as ${JSON.stringify(bin.nested)}`);
  assert.ok(bin.nested.more[0].equals(second), 'second attachment byte for byte');
  assert.deepEqual(plain, { room: 'r1', seq: 2, text: 'plain json' }, 'text-only publish unchanged');
});
