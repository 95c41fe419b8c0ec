// Builds fixtures/demo/ (the faces `npm run demo` uses) from ../shared/data/fer2013plus: a seeded uniform sample of
// each split (so the classes keep FER2013's own proportions), leaving out the 166 images whose original label is
// ambiguous. Same layout, columns and PNG files as the shared data and fixtures/ferplus.
// Run once: `node scripts/make-demo-fixtures.mjs [SRC] [--train N] [--valid N] [--test N]`.
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { train: { type: 'string', default: '4000' }, valid: { type: 'string', default: '500' }, test: { type: 'string', default: '1000' } },
});
const SRC = positionals[0] ?? '../shared/data/fer2013plus';
const OUT = join('fixtures', 'demo');
const rows = parse(readFileSync(join(SRC, 'labels.csv')), { columns: true });

let s = 20260528; // mulberry32
const rand = () => { s |= 0; s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const shuffle = (a) => { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; } return a; };

const picked = [];
for (const split of ['train', 'valid', 'test']) {
  const pool = shuffle(rows.filter((r) => r.split === split && r.fer2013_label_ambiguous === '0'));
  picked.push(...pool.slice(0, Number(values[split])).sort((a, b) => (a.image < b.image ? -1 : 1)));
}
rmSync(OUT, { recursive: true, force: true });
for (const r of picked) {
  const dst = join(OUT, r.image);
  mkdirSync(dirname(dst), { recursive: true });
  copyFileSync(join(SRC, r.image), dst);
}
writeFileSync(join(OUT, 'labels.csv'), stringify(picked, { header: true, columns: Object.keys(rows[0]) }));
const count = (split) => picked.filter((r) => r.split === split).length;
console.log(`${OUT}: ${picked.length} faces (train ${count('train')}, valid ${count('valid')}, test ${count('test')})`);
