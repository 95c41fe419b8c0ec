import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/features/backend.js';
import { halfToFloat } from '../src/features/npy.js';
import { loadEmbeddings } from '../src/features/store.js';
import { ingest } from '../src/ingest/index.js';
import { findLabelIssues } from '../src/scn/cl.js';
import { openStore, type DB } from '../src/store/db.js';
import { fixture, tempDir, cliRunner } from './helpers.js';

let tmp: { dir: string; cleanup: () => void };
let dbPath: string;
let db: DB;
let datasetId: number;
let images: { id: number; path: string; split: string; given: string; reference: string | null }[];
let tax: string[];

beforeAll(async () => {
  tmp = tempDir();
  dbPath = join(tmp.dir, 'fer.db');
  db = openStore(dbPath);
  await initBackend('auto');
  await ingest(db, { source: fixture('ferplus', 'labels.csv') });
  const ds = db.prepare(`SELECT id, taxonomy FROM datasets`).get() as { id: number; taxonomy: string };
  datasetId = ds.id;
  tax = JSON.parse(ds.taxonomy) as string[];
  images = db
    .prepare(`SELECT i.id, i.path, i.split, l.given, l.reference FROM images i JOIN labels l ON l.image_id = i.id ORDER BY i.id`)
    .all() as typeof images;
}, 120_000);

afterAll(() => {
  db?.close();
  tmp?.cleanup();
});

const cli = cliRunner({ cwd: () => tmp.dir, db: () => dbPath });

/** Everything the imports may write, as one hash: equal before and after a failed import means nothing was written. */
function dump(): string {
  const h = createHash('sha256');
  for (const t of ['embeddings', 'imported_backbones', 'runs', 'run_images', 'run_epochs', 'decisions']) {
    for (const r of db.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()) h.update(JSON.stringify(r, (_, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)));
    h.update(`|${t}|`);
  }
  return h.digest('hex');
}

const file = (name: string, text: string | Buffer): string => {
  const p = join(tmp.dir, name);
  writeFileSync(p, text);
  return p;
};

/** A .npy file: header (version 1, padded to 64 bytes) then the raw values. */
function npy(descr: string, shape: number[], data: Buffer, fortran = false): Buffer {
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + h.length + 1) % 64 !== 0) h += ' ';
  h += '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(h.length, 8);
  return Buffer.concat([pre, Buffer.from(h, 'latin1'), data]);
}

/** Features that carry the given label (so a head can learn from them): one-hot of the class plus a per-image value. */
const DIM = 8;
function features(k: number): number[] {
  const img = images[k]!;
  const v = new Array<number>(DIM).fill(0);
  v[tax.indexOf(img.given)] = 1;
  v[DIM - 1] = ((k * 37) % 17) / 16 - 0.5; // exactly representable in float16 (multiples of 1/16)
  return v;
}

function csvOf(rows: { path: string; values: number[] }[], header = ['path', ...Array.from({ length: DIM }, (_, j) => `d${j}`)]): string {
  return [header.join(','), ...rows.map((r) => [r.path, ...r.values].join(','))].join('\n') + '\n';
}

const allRows = (): { path: string; values: number[] }[] => images.map((img, k) => ({ path: img.path, values: features(k) }));

describe('embed --from: imported embeddings', () => {
  it('imports a CSV, stores it as its own backbone with the file hash as version, and train --backbone NAME uses it', async () => {
    const p = file('my_model.csv', csvOf(allRows()));
    const r = await cli('embed', '--from', p);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`imported ${images.length} embeddings \\(8-d\\) as backbone 'my_model' \\(version sha256:[0-9a-f]{16}\\)`));
    const version = `sha256:${createHash('sha256').update(Buffer.from(csvOf(allRows()))).digest('hex').slice(0, 16)}`;
    expect(db.prepare(`SELECT name, version, dim, rows FROM imported_backbones`).all()).toEqual([
      { name: 'my_model', version, dim: 8, rows: images.length },
    ]);
    const emb = loadEmbeddings(db, { datasetId, backbone: 'my_model' });
    expect(emb.imageIds).toEqual(images.map((i) => i.id));
    expect(Array.from(emb.data.subarray(5 * DIM, 6 * DIM))).toEqual(features(5));

    const t = await cli('train', '--backbone', 'my_model', '--method', 'ce', '--epochs', '30', '--lr', '0.05', '--hidden', '0', '--seed', '1');
    expect(t.code, t.stderr).toBe(0);
    const runId = Number(t.stdout.trim());
    const run = db.prepare(`SELECT backbone, config FROM runs WHERE id = ?`).get(runId) as { backbone: string; config: string };
    expect(run.backbone).toBe('my_model');
    expect(JSON.parse(run.config).backbone_version).toBe(version);
    // The features hold the given label: the head learns it, so training images are mostly predicted as given.
    const agree = db
      .prepare(`SELECT avg(predicted_label = given_label) AS a FROM run_images WHERE run_id = ? AND in_training = 1`)
      .get(runId) as { a: number };
    expect(agree.a).toBeGreaterThan(0.9);
    // ... and it concatenates with another imported backbone like built-in ones do.
    const q = file('other.csv', csvOf(allRows().map((r) => ({ ...r, values: r.values.map((v) => -v) }))));
    expect((await cli('embed', '--from', q)).code).toBe(0);
    const both = loadEmbeddings(db, { datasetId, backbone: 'my_model+other' });
    expect(both.dim).toBe(16);
    expect(Array.from(both.data.subarray(16 * 3 + 8, 16 * 4))).toEqual(features(3).map((v) => (v === 0 ? 0 : -v)));
  }, 60_000);

  it('imports .npy float16, float32 (big-endian too) and float64 with --paths, and a new import under a name replaces the old', async () => {
    const n = images.length;
    const vals = images.map((_, k) => features(k));
    const f16 = Buffer.alloc(n * DIM * 2);
    const toHalf = (v: number): number => {
      // only values of the form m/16 in [-1, 1] occur: sign, exponent and 10-bit mantissa by hand
      if (v === 0) return 0;
      const s = v < 0 ? 0x8000 : 0;
      const a = Math.abs(v);
      const e = Math.floor(Math.log2(a));
      return s | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
    };
    vals.flat().forEach((v, i) => f16.writeUInt16LE(toHalf(v), i * 2));
    const f32be = Buffer.alloc(n * DIM * 4);
    vals.flat().forEach((v, i) => f32be.writeFloatBE(v, i * 4));
    const f64 = Buffer.alloc(n * DIM * 8);
    vals.flat().forEach((v, i) => f64.writeDoubleLE(v * 3, i * 8));
    // Rows in reverse order: --paths says which image each row is.
    const reversed = (b: Buffer, size: number): Buffer =>
      Buffer.concat(Array.from({ length: n }, (_, r) => b.subarray((n - 1 - r) * DIM * size, (n - r) * DIM * size)));
    const paths = file('paths.txt', images.map((i) => i.path).reverse().join('\n') + '\n');
    for (const [name, descr, data, scale] of [
      ['half.npy', '<f2', reversed(f16, 2), 1],
      ['big.npy', '>f4', reversed(f32be, 4), 1],
      ['wide.npy', '<f8', reversed(f64, 8), 3],
    ] as const) {
      const r = await cli('embed', '--from', file(name, npy(descr, [n, DIM], data)), '--paths', paths, '--name', 'np');
      expect(r.code, r.stderr).toBe(0);
      const emb = loadEmbeddings(db, { datasetId, backbone: 'np' });
      expect(emb.imageIds.length).toBe(n);
      expect(Array.from(emb.data.subarray(7 * DIM, 8 * DIM))).toEqual(features(7).map((v) => v * scale));
      expect((db.prepare(`SELECT count(*) AS c FROM embeddings WHERE backbone = 'np'`).get() as { c: number }).c).toBe(n);
    }
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc100)).toBe(-2.5);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(halfToFloat(0x7e00)).toBeNaN();
  }, 60_000);

  it('matches paths written absolute (under the dataset root) or with ./ in front', async () => {
    const root = (db.prepare(`SELECT root FROM datasets WHERE id = ?`).get(datasetId) as { root: string }).root;
    const rows = allRows().map((r, k) => ({ ...r, path: k % 2 ? join(root, r.path) : `./${r.path}` }));
    const r = await cli('embed', '--from', file('paths_forms.csv', csvOf(rows)));
    expect(r.code, r.stderr).toBe(0);
    expect(loadEmbeddings(db, { datasetId, backbone: 'paths_forms' }).imageIds.length).toBe(images.length);
  });

  describe('every bad input is named, and nothing is written', () => {
    const rows = (): { path: string; values: number[] }[] => allRows();
    const csvCase = (edit: (lines: string[]) => void): string => {
      const lines = csvOf(rows()).trimEnd().split('\n');
      edit(lines);
      return lines.join('\n') + '\n';
    };
    const n = (): number => images.length;
    const goodF32 = (): Buffer => {
      const b = Buffer.alloc(n() * DIM * 4);
      images.forEach((_, k) => features(k).forEach((v, j) => b.writeFloatLE(v, (k * DIM + j) * 4)));
      return b;
    };
    const pathsText = (): string => images.map((i) => i.path).join('\n') + '\n';
    const cases: [string, () => string[], RegExp | (() => RegExp)][] = [
      ['a path that names no image', () => ['--from', file('bad1.csv', csvCase((l) => (l[3] = l[3]!.replace(/^[^,]+/, 'images/train/nope.png'))))], /bad1\.csv:4: path 'images\/train\/nope\.png' names no image/],
      ['an image with no row', () => ['--from', file('bad2.csv', csvCase((l) => l.splice(2, 1)))], /bad2\.csv: 1 image of dataset 'ferplus' has no row: images\//],
      ['NaN in the last row (after every other row was read)', () => ['--from', file('bad3.csv', csvCase((l) => (l[l.length - 1] = l[l.length - 1]!.replace(/,[^,]+$/, ',NaN'))))], () => new RegExp(`bad3\\.csv:${images.length + 1}: column 'd7' is 'NaN'`)],
      ['Infinity', () => ['--from', file('bad4.csv', csvCase((l) => (l[5] = l[5]!.replace(/,[^,]+$/, ',Infinity'))))], /bad4\.csv:6: column 'd7' is 'Infinity'/],
      ['an empty value', () => ['--from', file('bad4b.csv', csvCase((l) => (l[5] = l[5]!.replace(/,[^,]+$/, ','))))], /bad4b\.csv:6: column 'd7' is empty/],
      ['a ragged row', () => ['--from', file('bad5.csv', csvCase((l) => (l[9] = l[9] + ',0.5')))], /bad5\.csv:10: ragged row: 10 fields where the header has 9/],
      ['a second row for an image', () => ['--from', file('bad6.csv', csvCase((l) => l.push(l[1]!)))], () => new RegExp(`bad6\\.csv:${images.length + 2}: second row for image '[^']+' \\(first at bad6\\.csv:2\\)`)],
      ['no path column', () => ['--from', file('bad7.csv', csvCase((l) => (l[0] = l[0]!.replace('path', 'file'))))], /bad7\.csv:1: no 'path' column/],
      ['a built-in backbone name', () => ['--from', file('ok.csv', csvOf(rows())), '--name', 'faceexpr'], /backbone name 'faceexpr' is a built-in backbone/],
      ['--paths with a CSV', () => ['--from', file('ok2.csv', csvOf(rows())), '--paths', file('p0.txt', pathsText())], /--paths goes with a \.npy file only: ok2\.csv names its images in its 'path' column/],
      ['a name that is not a word', () => ['--from', file('ok3.csv', csvOf(rows())), '--name', 'my model'], /backbone name 'my model': use letters, digits/],
      ['not a .npy file', () => ['--from', file('bad8.npy', 'hello, world, this is text'), '--paths', file('p8.txt', pathsText())], /bad8\.npy: not a \.npy file/],
      ['an integer dtype', () => ['--from', file('bad9.npy', npy('<i4', [n(), DIM], goodF32())), '--paths', file('p9.txt', pathsText())], /bad9\.npy: \.npy dtype '<i4' is not supported/],
      ['Fortran order', () => ['--from', file('bad10.npy', npy('<f4', [n(), DIM], goodF32(), true)), '--paths', file('p10.txt', pathsText())], /bad10\.npy: \.npy array is in Fortran/],
      ['a 1-D array', () => ['--from', file('bad11.npy', npy('<f4', [n() * DIM], goodF32())), '--paths', file('p11.txt', pathsText())], /bad11\.npy: \.npy shape \(\d+,\) is not 2-D/],
      ['a file cut short', () => ['--from', file('bad12.npy', npy('<f4', [n(), DIM], goodF32().subarray(0, 100))), '--paths', file('p12.txt', pathsText())], /bad12\.npy: \.npy file is \d+ bytes but its header says \d+ x 8 float32.*cut short/],
      ['a paths file one line short', () => ['--from', file('bad13.npy', npy('<f4', [n(), DIM], goodF32())), '--paths', file('p13.txt', images.slice(1).map((i) => i.path).join('\n'))], () => new RegExp(`p13\\.txt has ${images.length - 1} lines but bad13\\.npy has ${images.length} rows`)],
      ['a paths file one line long', () => ['--from', file('bad14.npy', npy('<f4', [n(), DIM], goodF32())), '--paths', file('p14.txt', pathsText() + 'images/extra.png\n')], () => new RegExp(`p14\\.txt has ${images.length + 1} paths but bad14\\.npy has ${images.length} rows`)],
      ['a .npy without --paths', () => ['--from', file('bad15.npy', npy('<f4', [n(), DIM], goodF32()))], /bad15\.npy: a \.npy file needs --paths/],
      ['Inf in a .npy row', () => {
        const b = goodF32();
        b.writeFloatLE(Infinity, (10 * DIM + 2) * 4);
        return ['--from', file('bad16.npy', npy('<f4', [n(), DIM], b)), '--paths', file('p16.txt', pathsText())];
      }, /bad16\.npy row 11 \(p16\.txt:11\): value 3 is Infinity/],
    ];
    it.each(cases)('%s', async (_what, args, message) => {
      const before = dump();
      const r = await cli('embed', ...args());
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(typeof message === 'function' ? message() : message);
      expect(dump()).toBe(before);
    });
  });

  it('--skip-bad skips rows naming no image and trains on the images that have a row', async () => {
    const lines = csvOf(allRows()).trimEnd().split('\n');
    lines.splice(1, 3); // three images without a row
    lines.push(`images/train/unknown.png,${new Array(DIM).fill(0).join(',')}`);
    const p = file('partial.csv', lines.join('\n') + '\n');
    const before = dump();
    const bad = await cli('embed', '--from', p);
    expect(bad.stderr).toMatch(/partial\.csv:\d+: path 'images\/train\/unknown\.png' names no image/);
    expect(dump()).toBe(before);
    const r = await cli('embed', '--from', p, '--skip-bad');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/3 images have no row \(--skip-bad\)/);
    expect(r.stderr).toMatch(/skipped 1 row naming no image/);
    const t = await cli('train', '--backbone', 'partial', '--epochs', '2', '--hidden', '0');
    expect(t.code, t.stderr).toBe(0);
    const seen = db.prepare(`SELECT count(*) AS c FROM run_images WHERE run_id = ?`).get(Number(t.stdout.trim())) as { c: number };
    expect(seen.c).toBe(images.length - 3);
    // An import that covers only some images cannot be concatenated.
    const c = await cli('train', '--backbone', 'partial+my_model', '--epochs', '2');
    expect(c.stderr).toMatch(/embeddings missing for 3 of \d+ images.*--skip-bad can only be trained on alone/);
  }, 60_000);
});

describe('train --probs: imported out-of-fold probabilities', () => {
  /** Probabilities that favour the reference label (FER+ majority) where there is one, else the given one. */
  function probsOf(k: number): number[] {
    const img = images[k]!;
    const target = tax.indexOf(img.reference ?? img.given);
    const raw = tax.map((_, c) => (c === target ? 6 : 1 + ((k * 7 + c * 3) % 5) / 2));
    const z = raw.reduce((a, b) => a + b, 0);
    return raw.map((v) => v / z);
  }

  it('makes a probs run whose proposals are cleanlab\'s rule on the training images, and report, queue, decide, export and --trust-decisions work on it', async () => {
    // Columns in another order, with a synonym (happy), six decimals: rows sum to 1 within 1e-6.
    const order = [6, 3, 0, 1, 2, 4, 5];
    const header = ['path', ...order.map((c) => (tax[c] === 'happiness' ? 'happy' : tax[c]!))];
    const text = [header.join(','), ...images.map((img, k) => [img.path, ...order.map((c) => probsOf(k)[c]!.toFixed(6))].join(','))].join('\n') + '\n';
    const p = file('oof.csv', text);
    const r = await cli('train', '--probs', p);
    expect(r.code, r.stderr).toBe(0);
    const runId = Number(r.stdout.trim());
    const run = db.prepare(`SELECT method, status FROM runs WHERE id = ?`).get(runId);
    expect(run).toEqual({ method: 'probs', status: 'done' });

    // The proposals are exactly findLabelIssues on the training images (rounded as the file), each its argmax.
    const train = images.map((img, k) => ({ img, k })).filter(({ img }) => img.split === 'train');
    const P = train.flatMap(({ k }) => probsOf(k).map((v) => Number(v.toFixed(6))));
    const mask = findLabelIssues(train.map(({ img }) => tax.indexOf(img.given)), P, tax.length);
    const expected = train.filter((_, q) => mask[q]).map(({ img, k }) => ({ id: img.id, proposed: tax[probsOf(k).indexOf(Math.max(...probsOf(k)))] }));
    expect(expected.length).toBeGreaterThan(10);
    const got = db.prepare(`SELECT image_id AS id, proposed_label AS proposed FROM run_images WHERE run_id = ? AND proposed_label IS NOT NULL ORDER BY image_id`).all(runId);
    expect(got).toEqual(expected);
    // Margins: P(proposed) - P(given).
    const m = db.prepare(`SELECT probs, given_label, proposed_label, proposal_margin FROM run_images WHERE run_id = ? AND proposed_label IS NOT NULL LIMIT 1`).get(runId) as { probs: string; given_label: string; proposed_label: string; proposal_margin: number };
    const pr = JSON.parse(m.probs) as number[];
    expect(m.proposal_margin).toBeCloseTo(pr[tax.indexOf(m.proposed_label)]! - pr[tax.indexOf(m.given_label)]!, 4);

    const rep = await cli('report', '--run', String(runId));
    expect(rep.code, rep.stderr).toBe(0);
    expect(rep.stdout + rep.stderr).toMatch(/probs/);
    const q = await cli('queue', '--run', String(runId), '--limit', '3', '--json');
    expect(q.code, q.stderr).toBe(0);
    const items = (JSON.parse(q.stdout) as { items: { path: string; proposed: string }[] }).items;
    expect(items.length).toBe(3);
    const d = file('decisions.csv', `path,action,label\n${items[0]!.path},accepted,\n${items[1]!.path},rejected,\n`);
    const dec = await cli('decide', '--run', String(runId), '--annotator', 'ann', d);
    expect(dec.code, dec.stderr).toBe(0);
    const ex = await cli('export', join(tmp.dir, 'out.csv'), '--run', String(runId));
    expect(ex.code, ex.stderr).toBe(0);
    // The decided images keep their decision: no proposal in a --trust-decisions probs run.
    const t = await cli('train', '--probs', p, '--trust-decisions');
    expect(t.code, t.stderr).toBe(0);
    const decided = db
      .prepare(`SELECT count(*) AS c FROM run_images r JOIN images i ON i.id = r.image_id WHERE r.run_id = ? AND i.path IN (?, ?) AND r.proposed_label IS NOT NULL`)
      .get(Number(t.stdout.trim()), items[0]!.path, items[1]!.path) as { c: number };
    expect(decided.c).toBe(0);
  }, 60_000);

  it('reads a float16 .npy with --paths (columns in the dataset\'s class order)', async () => {
    const n = images.length;
    const b = Buffer.alloc(n * tax.length * 2);
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const half = (v: number): number => {
      f32[0] = v; // round-to-nearest float16 of a value in (0, 1)
      const x = u32[0]!;
      const e = ((x >> 23) & 0xff) - 127 + 15;
      if (e <= 0) return Math.round(v / 2 ** -24);
      return (e << 10) | Math.round((x & 0x7fffff) / 8192);
    };
    images.forEach((_, k) => probsOf(k).forEach((v, c) => b.writeUInt16LE(half(v), (k * tax.length + c) * 2)));
    const r = await cli('train', '--probs', file('oof16.npy', npy('<f2', [n, tax.length], b)), '--paths', file('oof16.txt', images.map((i) => i.path).join('\n')));
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse((db.prepare(`SELECT config FROM runs WHERE id = ?`).get(Number(r.stdout.trim())) as { config: string }).config);
    expect(cfg.probs_format).toBe('npy float16');
    expect(cfg.images).toBe(n);
  });

  describe('every bad input is named, and nothing is written', () => {
    const header = (): string[] => ['path', ...tax];
    const good = (): string[] => [header().join(','), ...images.map((img, k) => [img.path, ...probsOf(k).map((v) => v.toFixed(6))].join(','))];
    const cases: [string, () => string[], RegExp | (() => RegExp)][] = [
      ['a row that does not sum to 1', () => {
        const l = good();
        l[4] = l[4]!.replace(/,[^,]+$/, ',0.5');
        return ['--probs', file('pbad1.csv', l.join('\n'))];
      }, /pbad1\.csv:5: probabilities sum to [\d.]+, not 1 \(within 0\.001\)/],
      ['a negative probability', () => {
        const l = good();
        const v = l[6]!.split(',');
        v[1] = String(-0.2);
        v[2] = String(Number(v[2]) + 0.2);
        l[6] = v.join(',');
        return ['--probs', file('pbad2.csv', l.join('\n'))];
      }, /pbad2\.csv:7: probability -0\.2 of class 'anger' is outside \[0, 1\]/],
      ['a column that is no class', () => {
        const l = good();
        l[0] = l[0]!.replace('disgust', 'pain');
        return ['--probs', file('pbad3.csv', l.join('\n'))];
      }, /pbad3\.csv:1: column 'pain' is not a class of dataset 'ferplus'/],
      ['a class without a column', () => ['--probs', file('pbad4.csv', good().map((line) => line.replace(/,[^,]+$/, '')).join('\n'))], /pbad4\.csv:1: no column for class neutral/],
      ['an image with no row', () => ['--probs', file('pbad5.csv', good().filter((_, i) => i !== 3).join('\n'))], /pbad5\.csv: 1 labelled image of dataset 'ferplus' has no row/],
      ['a path that names no image', () => ['--probs', file('pbad6.csv', [...good(), `nope.png,${probsOf(0).join(',')}`].join('\n'))], /pbad6\.csv:\d+: path 'nope\.png' names no image/],
      ['NaN', () => {
        const l = good();
        l[8] = l[8]!.replace(/,[^,]+$/, ',nan');
        return ['--probs', file('pbad7.csv', l.join('\n'))];
      }, /pbad7\.csv:9: column 'neutral' is 'nan'/],
      ['a .npy with the wrong number of columns', () => {
        const b = Buffer.alloc(images.length * 6 * 4);
        return ['--probs', file('pbad8.npy', npy('<f4', [images.length, 6], b)), '--paths', file('pbad8.txt', images.map((i) => i.path).join('\n'))];
      }, /pbad8\.npy: 6 columns, but dataset 'ferplus' has 7 classes: columns must be anger, disgust/],
      ['training options with --probs', () => ['--probs', file('pok.csv', good().join('\n')), '--epochs', '3'], /--probs makes a run from the file's probabilities: it takes no --epochs/],
    ];
    it.each(cases)('%s', async (_what, args, message) => {
      const before = dump();
      const r = await cli('train', ...args());
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(typeof message === 'function' ? message() : message);
      expect(dump()).toBe(before);
    });
  });
});
