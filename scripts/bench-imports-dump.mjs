// Writes a dataset's stored embeddings of BACKBONE (a or a+b, concatenated in that order) to OUT.npy (float32,
// C order) and OUT.paths.txt (one image path per line, row order), plus labels to OUT.labels.csv
// (path,split,given,reference): the stand-in for "your own model's features" in docs/BENCHMARKS.md (imports).
// Usage: node scripts/bench-imports-dump.mjs DB BACKBONE OUT
import Database from 'better-sqlite3';
import { openSync, writeSync, closeSync, writeFileSync } from 'node:fs';

const [dbPath, backbone, out] = process.argv.slice(2);
const db = new Database(dbPath, { readonly: true });
const parts = backbone.split('+');
const dims = parts.map((p) => db.prepare(`SELECT dim FROM embeddings WHERE backbone = ? LIMIT 1`).get(p).dim);
const dim = dims.reduce((a, b) => a + b, 0);
const rows = db
  .prepare(
    `SELECT i.id, i.path, i.split, l.given, l.reference FROM images i JOIN labels l ON l.image_id = i.id
     WHERE ${parts.map((_, k) => `EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.backbone = ?)`).join(' AND ')} ORDER BY i.id`,
  )
  .all(...parts);
const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${dim}), }`;
let h = header;
while ((10 + h.length + 1) % 64 !== 0) h += ' ';
h += '\n';
const pre = Buffer.alloc(10);
Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
pre.writeUInt16LE(h.length, 8);
const fd = openSync(`${out}.npy`, 'w');
writeSync(fd, pre);
writeSync(fd, Buffer.from(h, 'latin1'));
const get = db.prepare(`SELECT vector FROM embeddings WHERE image_id = ? AND backbone = ?`);
for (const r of rows) {
  for (const p of parts) writeSync(fd, get.get(r.id, p).vector);
}
closeSync(fd);
writeFileSync(`${out}.paths.txt`, rows.map((r) => r.path).join('\n') + '\n');
writeFileSync(`${out}.labels.csv`, 'path,split,given,reference\n' + rows.map((r) => `${r.path},${r.split},${r.given},${r.reference ?? ''}`).join('\n') + '\n');
console.log(`${rows.length} rows x ${dim} (${parts.join(' + ')}) -> ${out}.npy, ${out}.paths.txt, ${out}.labels.csv`);
