/**
 * Issue 19: near-duplicates (planted re-encoded, brightened, shifted and byte-identical copies), leakage across
 * splits, labels that disagree, non-faces (noise, flat, gradient, text), report --json / --html and export --dedupe,
 * on real FER faces from fixtures/imagefolder embedded for real (onnxruntime).
 */
import { parse } from 'csv-parse/sync';
import { copyFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type DB } from '../src/store/db.js';
import { cosinePairs, cosinePairsJs, unitRows } from '../src/quality/similarity.js';
import { imageFlags, nonFaceReason } from '../src/quality/checks.js';
import { alignedCorrelation, pixelStats } from '../src/quality/pixels.js';
import { conflictingDuplicateGroups, DEFAULT_QUALITY, duplicateGroups, flaggedImages, qualityFlags } from '../src/quality/index.js';
import { groupPairs } from '../src/quality/duplicates.js';
import { fixture, tempDir, cliRunner } from './helpers.js';

const FAST = ['--epochs', '4', '--relabel-epoch', '2', '--hidden', '32', '--batch', '16'];

let tmp: { dir: string; cleanup: () => void };
let data: string;
let dbPath: string;
let db: DB;

const cli = cliRunner({ cwd: () => tmp.dir, db: () => dbPath });

const W = 48;
function grey(f: (x: number, y: number) => number): Sharp {
  return sharp(Buffer.from(Uint8Array.from({ length: W * W }, (_, k) => Math.max(0, Math.min(255, Math.round(f(k % W, Math.floor(k / W))))))), {
    raw: { width: W, height: W, channels: 1 },
  });
}
const textSvg = (s: string): Buffer =>
  Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><rect width="48" height="48" fill="#fff"/>` +
      `<text x="2" y="20" font-size="16" font-family="DejaVu Sans">${s}</text><text x="2" y="40" font-size="16" font-family="DejaVu Sans">${s}</text></svg>`,
  );

// planted copies: (copy path, original path) under the dataset root
const PLANTED = {
  reencoded: ['train/happiness/plant-reencoded.jpg', 'train/anger/fer0014103.png'], // another label: a conflict
  brightened: ['test/anger/plant-brightened.png', 'train/anger/fer0015783.png'], // in test: leakage
  shifted: ['train/anger/plant-shifted.png', 'train/anger/fer0016002.png'],
  copy: ['train/neutral/plant-copy.png', 'train/disgust/fer0003280.png'], // byte for byte, another label
} as const;
const NON_FACES = { 'train/neutral/noise.png': 'noise', 'train/neutral/flat.png': 'flat', 'train/neutral/gradient.png': 'gradient', 'train/neutral/text.png': 'text-like' } as const;

beforeAll(async () => {
  tmp = tempDir();
  data = join(tmp.dir, 'faces');
  cpSync(fixture('imagefolder'), data, { recursive: true });
  const at = (p: string): string => join(data, p);
  await sharp(at(PLANTED.reencoded[1])).jpeg({ quality: 75 }).toFile(at(PLANTED.reencoded[0]));
  await sharp(at(PLANTED.brightened[1])).linear(1.15, 0).png().toFile(at(PLANTED.brightened[0]));
  await sharp(at(PLANTED.shifted[1])).extend({ left: 1, extendWith: 'copy' }).extract({ left: 0, top: 0, width: 48, height: 48 }).png().toFile(at(PLANTED.shifted[0]));
  copyFileSync(at(PLANTED.copy[1]), at(PLANTED.copy[0]));
  let seed = 11;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  await grey(() => rnd() * 255).png().toFile(at('train/neutral/noise.png'));
  await grey(() => 131).png().toFile(at('train/neutral/flat.png'));
  await grey((x, y) => ((x + y) * 255) / 94).png().toFile(at('train/neutral/gradient.png'));
  await sharp(textSvg('Hello')).greyscale().png().toFile(at('train/neutral/text.png'));
  dbPath = join(tmp.dir, 'fer.db');
  for (const args of [['ingest', data, '--name', 'planted'], ['embed', '--dataset', 'planted']]) {
    const r = await cli(...args);
    expect(r.code, r.stderr).toBe(0);
  }
  db = openStore(dbPath);
}, 120_000);

afterAll(() => {
  db?.close();
  tmp?.cleanup();
});

describe('similarity search', () => {
  it('onnxruntime finds the same pairs as the plain loop, in blocks of any size', async () => {
    let seed = 3;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff) - 0.5;
    const dim = 16;
    const base = Float32Array.from({ length: 60 * dim }, rnd);
    // rows 60.. are small perturbations of rows 0..9: pairs at high cosine
    const data = new Float32Array(70 * dim);
    data.set(base);
    for (let r = 0; r < 10; r++) for (let k = 0; k < dim; k++) data[(60 + r) * dim + k] = base[r * dim + k]! * 3 + rnd() * 0.05;
    const ref = cosinePairsJs(unitRows(data, dim), dim, 0.9);
    expect(ref.length).toBeGreaterThanOrEqual(10);
    for (const block of [1, 7, 64]) {
      const { pairs, engine } = await cosinePairs(data, dim, 0.9, { block });
      expect(engine).toBe('onnxruntime');
      expect(pairs.map((p) => [p.i, p.j])).toEqual(ref.map((p) => [p.i, p.j]));
      pairs.forEach((p, k) => expect(p.cos).toBeCloseTo(ref[k]!.cos, 5));
    }
  });

  it('groups chains of pairs; a group with one near pair is near', () => {
    const g = groupPairs(6, [
      { i: 0, j: 1, cos: 1, pixel: null, exact: true },
      { i: 3, j: 4, cos: 0.9, pixel: 0.97, exact: false },
      { i: 4, j: 5, cos: 0.95, pixel: 0.99, exact: false },
    ]);
    expect(g).toEqual([
      { members: [3, 4, 5], kind: 'near', similarity: 0.9, pixelSimilarity: 0.97 },
      { members: [0, 1], kind: 'exact', similarity: 1, pixelSimilarity: null },
    ]);
  });
});

describe('pixel checks', () => {
  const face = async (p: string): Promise<Uint8Array> => new Uint8Array(await sharp(fixture('imagefolder', p)).greyscale().raw().toBuffer());

  it('passes real faces and names what each planted non-face is', async () => {
    for (const p of ['train/anger/fer0014103.png', 'train/disgust/fer0003280.png', 'train/anger/fer0016002.png']) {
      expect(nonFaceReason(pixelStats(await face(p)))).toBeNull();
    }
    const dark = pixelStats(Uint8Array.from(await face('train/anger/fer0014103.png'), (v) => v * 0.15));
    expect(imageFlags(dark).map((f) => f.flag)).toContain('dark');
  });

  it('a copy shifted by a pixel correlates above the threshold, another face does not', async () => {
    const a = await face('train/anger/fer0016002.png');
    const shifted = Uint8Array.from(a, (_, k) => a[k % W === 0 ? k : k - 1]!);
    expect(alignedCorrelation(a, shifted)).toBeGreaterThan(DEFAULT_QUALITY.pixelMatch);
    expect(alignedCorrelation(a, Uint8Array.from(a, (v) => Math.min(255, v * 1.15)))).toBeGreaterThan(0.97);
    expect(alignedCorrelation(a, await face('train/disgust/fer0003280.png'))).toBeLessThan(0.8);
  });
});

describe('fer-clean quality on planted duplicates and non-faces', () => {
  let groups: ReturnType<typeof duplicateGroups>;
  const groupOf = (path: string) => groups.find((g) => g.images.some((m) => m.path === path));

  it('finds every planted copy in a group with its original, and nothing else', async () => {
    const r = await cli('quality', '--dataset', 'planted', '--json');
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    groups = duplicateGroups(db, s.dataset_id);
    for (const [name, [copy, original]] of Object.entries(PLANTED)) {
      const g = groupOf(copy);
      expect(g, `${name}: ${copy}`).toBeDefined();
      expect(g!.images.map((m) => m.path).sort(), name).toEqual([copy, original].sort());
      expect(g!.kind, name).toBe(name === 'copy' ? 'exact' : 'near');
    }
    expect(groups).toHaveLength(4);
    expect(s.groups).toEqual({ exact: 1, near: 3 });
    expect(s.pairs_across_splits).toBe(1);
    expect(s.pairs_conflicting).toBe(2);
  }, 60_000);

  it('says which groups leak across splits and whose labels disagree', () => {
    expect(groupOf(PLANTED.brightened[0])!.splits).toEqual(['test', 'train']);
    const conflicting = conflictingDuplicateGroups(db, (db.prepare(`SELECT id FROM datasets`).get() as { id: number }).id);
    expect(conflicting.map((g) => g.images.map((m) => m.label).sort())).toEqual(
      expect.arrayContaining([
        ['anger', 'happiness'],
        ['disgust', 'neutral'],
      ]),
    );
    expect(conflicting).toHaveLength(2);
  });

  it('flags each planted non-face with its reason, and no real face as a non-face', () => {
    const id = (db.prepare(`SELECT id FROM datasets`).get() as { id: number }).id;
    const nonFaces = qualityFlags(db, id, { flag: 'non-face' });
    expect(Object.fromEntries(nonFaces.map((f) => [f.path, f.detail.split(':')[0]]))).toEqual(NON_FACES);
  });
});

describe('fer-clean quality on bad input', () => {
  it('refuses a threshold out of range and an unreadable image by name, leaving the stored check as it was', async () => {
    const before = db.prepare(`SELECT count(*) AS n FROM duplicate_members`).get();
    const checked = db.prepare(`SELECT checked_at FROM quality_checks`).all();
    const range = await cli('quality', '--dataset', 'planted', '--pixel-match', '2');
    expect(range.code).not.toBe(0);
    expect(range.stderr).toMatch(/pixelMatch must be a number from -1 to 1, got 2/);
    const file = join(data, 'train/anger/fer0025270.png');
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, 40)); // truncated
    try {
      const r = await cli('quality', '--dataset', 'planted');
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/train\/anger\/fer0025270\.png: cannot decode image/);
    } finally {
      writeFileSync(file, bytes);
    }
    expect(db.prepare(`SELECT count(*) AS n FROM duplicate_members`).get()).toEqual(before);
    expect(db.prepare(`SELECT checked_at FROM quality_checks`).all()).toEqual(checked);
  }, 60_000);
});

describe('report and export', () => {
  let runId: number;
  beforeAll(async () => {
    const r = await cli('train', '--dataset', 'planted', '--seed', '1', ...FAST);
    expect(r.code, r.stderr).toBe(0);
    runId = Number(r.stdout.trim());
  }, 120_000);

  it('report --json carries the duplicate groups and each flagged image once with all its reasons', async () => {
    const r = await cli('report', '--run', String(runId), '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.duplicates).toHaveLength(4);
    const leak = j.duplicates.find((g: { splits: string[] }) => g.splits.length > 1);
    expect(leak).toMatchObject({ kind: 'near', labels_disagree: false });
    expect(leak.images.map((m: { path: string; split: string; label: string }) => [m.path, m.split, m.label]).sort()).toEqual(
      [
        [PLANTED.brightened[0], 'test', 'anger'],
        [PLANTED.brightened[1], 'train', 'anger'],
      ].sort(),
    );
    expect(leak.similarity).toBeGreaterThan(0.85);
    const text = await cli('report', '--run', String(runId));
    expect(text.stdout).toMatch(/duplicates \(`fer-clean quality`, [^)]+\): 1 exact and 3 near groups, 1 across splits, 2 whose labels disagree/);
    const paths = j.flagged_images.map((f: { path: string }) => f.path);
    expect(new Set(paths).size).toBe(paths.length);
    for (const p of Object.keys(NON_FACES)) {
      const f = j.flagged_images.find((x: { path: string }) => x.path === p);
      expect(f.reasons.map((x: { flag: string }) => x.flag), p).toContain('non-face');
    }
  });

  it('report --html writes one self-contained page with every section', async () => {
    const file = join(tmp.dir, 'report.html');
    const r = await cli('report', '--run', String(runId), '--html', file, '--sheet-count', '8');
    expect(r.code, r.stderr).toBe(0);
    const html = readFileSync(file, 'utf8');
    for (const id of ['summary', 'confusion', 'importance', 'queue', 'duplicates', 'flagged']) expect(html).toContain(`<section id="${id}">`);
    // nothing fetched: no http(s) link, no external src or stylesheet; every image inline
    expect(html).not.toMatch(/(src|href)="(?!data:)/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html.match(/<img src="data:image\/jpeg;base64,/g)!.length).toBeGreaterThanOrEqual(8 + 8 + 4);
    expect(html.match(/<div class="group" data-kind="(exact|near)">/g)).toHaveLength(4);
    // the planted copy with another label is framed red, a group that agrees green
    expect(html).toMatch(/border-color:#d22f27"><img[^>]*><figcaption>train\/happiness\/plant-reencoded\.jpg/);
    expect(html).toMatch(/border-color:#2e9d3e"><img[^>]*><figcaption>test\/anger\/plant-brightened\.png/);
    // flagged images: each non-face says which kind
    expect(html).toMatch(/<figcaption>train\/neutral\/noise\.png<br>train: neutral<br>non-face: noise<\/figcaption>/);
  });

  it('export --dedupe drop writes one image per group, a test image first; keep writes all', async () => {
    const keep = await cli('export', join(tmp.dir, 'all.csv'), '--dataset', 'planted');
    expect(keep.code, keep.stderr).toBe(0);
    const drop = await cli('export', join(tmp.dir, 'dedup.csv'), '--dataset', 'planted', '--dedupe', 'drop');
    expect(drop.code, drop.stderr).toBe(0);
    const read = (f: string): string[] => (parse(readFileSync(join(tmp.dir, f)), { columns: true }) as { path: string }[]).map((r) => r.path);
    const all = read('all.csv');
    const dedup = read('dedup.csv');
    expect(all.length - dedup.length).toBe(4);
    expect(dedup).toContain(PLANTED.brightened[0]); // the test copy stays, its train original goes
    expect(dedup).not.toContain(PLANTED.brightened[1]);
    const bad = await cli('export', join(tmp.dir, 'x.csv'), '--dataset', 'planted', '--dedupe', 'some');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--dedupe must be one of keep, drop/);
  });

  it('each flagged image is listed once: an image with two reasons is one entry', () => {
    const id = (db.prepare(`SELECT id FROM datasets`).get() as { id: number }).id;
    // a label that is not an expression and an ingest flag on the same image (as AffectNet code 10 gives)
    const img = db.prepare(`SELECT id, path FROM images WHERE path = ?`).get('train/neutral/noise.png') as { id: number; path: string };
    db.prepare(`UPDATE labels SET trainable = 0, given = 'no-face' WHERE image_id = ?`).run(img.id);
    db.prepare(`UPDATE images SET quality = 'no-face' WHERE id = ?`).run(img.id);
    const listed = flaggedImages(db, id).filter((f) => f.path === img.path);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.reasons.map((r) => `${r.source}:${r.flag}`)).toEqual(['ingest:no-face', 'label:no-face', 'quality:non-face']);
  });
});
