// node bench/snapshot-feed.mjs URL N: N file:processing events for pipeline `scale` (batches of
// 1,000, 4 POSTs at a time); prints how long it took. Used by bench/snapshot-scale.
const [url, n = '1000000'] = process.argv.slice(2);
const TOTAL = Number(n);
const BATCH = 1000;
let next = 0;
const t0 = Date.now();
async function feeder() {
  while (next < TOTAL) {
    const s = next;
    next += BATCH;
    const body = JSON.stringify(Array.from({ length: Math.min(BATCH, TOTAL - s) }, (_, k) => ({
      type: 'file:processing', pipeline_id: 'scale', pipeline_type: 'local_files',
      file: { id: `file-${s + k}`, name: `file-${s + k}.pdf` },
    })));
    const r = await fetch(`${url}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  }
}
await Promise.all([feeder(), feeder(), feeder(), feeder()]);
console.log(`fed ${TOTAL} files in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
