import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initBackend } from '../src/features/backend.js';
import { BACKBONES, backboneVersion } from '../src/features/backbones.js';
import { decodeRgb } from '../src/features/preprocess.js';
import { embedDataset } from '../src/features/embed.js';
import { Embedder } from '../src/features/embedder.js';
import { loadEmbeddings } from '../src/features/store.js';
import { DEFAULT_TTA, FLIP_SUFFIX, FlipEmbedder, meanOfHalves, mirrorRgb, ttaVersion } from '../src/features/tta.js';
import type { RgbImage } from '../src/features/facebox.js';
import { ingest } from '../src/ingest/index.js';
import { resolveTta } from '../src/scn/index.js';
import { openStore } from '../src/store/db.js';
import { run } from '../cli/run.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

beforeAll(async () => {
  await initBackend('auto');
});

const FACES = ['images/train/fer0014103.png', 'images/train/fer0015783.png'];

/** The left half of the image mirrored onto its right half: an image equal to its own mirror. */
function symmetric(image: RgbImage): RgbImage {
  const out = Uint8Array.from(image.data);
  const { width: w, height: h } = image;
  for (let y = 0; y < h; y++) for (let x = Math.ceil(w / 2); x < w; x++) for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = image.data[(y * w + (w - 1 - x)) * 3 + c]!;
  return { data: out, width: w, height: h };
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('mirrorRgb and meanOfHalves', () => {
  it('mirrors each row left to right, RGB triples kept together; twice gives the image back', () => {
    // 3 x 2 image, pixel (x, y) = [10x + y, 100 + x, 200 + y]
    const px = (x: number, y: number): number[] => [10 * x + y, 100 + x, 200 + y];
    const img: RgbImage = { width: 3, height: 2, data: Uint8Array.from([0, 1].flatMap((y) => [0, 1, 2].flatMap((x) => px(x, y)))) };
    const m = mirrorRgb(img);
    expect(Array.from(m.data)).toEqual([0, 1].flatMap((y) => [2, 1, 0].flatMap((x) => px(x, y))));
    expect(mirrorRgb(m)).toEqual(img);
    expect(img.data[0]).toBe(0); // the input is left as it was
  });

  it('averages row i with row n + i', () => {
    expect(Array.from(meanOfHalves(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2))).toEqual([3, 4, 5, 6]);
    expect(() => meanOfHalves(new Float32Array(5), 2)).toThrow(/not 2 x 2 rows/);
  });
});

describe('FlipEmbedder (flip test-time augmentation)', () => {
  it('gives a symmetric face the same features as no TTA, and a face and its mirror the same flip features', async () => {
    const plain = new Embedder(BACKBONES['faceexpr']!);
    const flip = new FlipEmbedder(plain);
    try {
      const faces = await Promise.all(FACES.map((p) => decodeRgb(fixture('ferplus', p))));
      const sym = symmetric(faces[0]!);
      expect(mirrorRgb(sym)).toEqual(sym);
      expect(maxAbsDiff(await flip.run({ images: [sym] }), plain.run({ images: [sym] }))).toBeLessThan(1e-5);

      const face = faces[1]!;
      const f = await flip.run({ images: [face] });
      const g = await flip.run({ images: [mirrorRgb(face)] });
      expect(maxAbsDiff(f, g)).toBeLessThan(1e-5);
      // and it is not the plain features: a real face is not its own mirror
      const p = plain.run({ images: [face] });
      expect(maxAbsDiff(f, p)).toBeGreaterThan(1e-3);
      // the mean of the two plain feature vectors, row for row
      const pm = plain.run({ images: [mirrorRgb(face)] });
      expect(maxAbsDiff(f, Float32Array.from(p, (v, i) => (v + pm[i]!) / 2))).toBeLessThan(1e-5);
    } finally {
      plain.dispose();
    }
  });
});

describe('embed --tta: both kinds kept apart in the cache', () => {
  const tmp = useTempDir();
  const store = useStore(tmp, (dir) => ({ db: openStore(join(dir, 'test.db')) }));
  let datasetId: number;

  beforeEach(async () => {
    const lines = readFileSync(fixture('ferplus', 'labels.csv'), 'utf8').trim().split('\n');
    const rows = lines.slice(1, 5);
    const root = join(tmp.dir, 'data');
    for (const r of rows) {
      const path = r.split(',')[0]!;
      mkdirSync(dirname(join(root, path)), { recursive: true });
      copyFileSync(fixture('ferplus', path), join(root, path));
    }
    writeFileSync(join(root, 'labels.csv'), [lines[0], ...rows].join('\n') + '\n');
    datasetId = (await ingest(store.db, { source: join(root, 'labels.csv'), name: 'small' })).dataset.id;
  });

  it('stores flip embeddings under their own version beside the plain ones; each load reads its own kind', async () => {
    const version = backboneVersion(BACKBONES['faceexpr']!);
    expect(ttaVersion(version, 'flip')).toBe(`${version}${FLIP_SUFFIX}`);
    expect(await embedDataset(store.db, { datasetId, backbone: 'faceexpr', tta: 'none', batch: 3 })).toMatchObject({ computed: 4, skipped: 0, tta: 'none' });
    expect(() => loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr', tta: 'flip' })).toThrow(
      DEFAULT_TTA === 'flip' ? /missing for 4 of 4 images.*`fer-clean embed --backbone faceexpr --dataset small`/ : /missing for 4 of 4 images.*--tta flip/,
    );
    expect(resolveTta(store.db, datasetId, 'faceexpr')).toBe('none'); // only plain ones stored: train uses them
    // the flip kind does not count the plain rows as done, and leaves them untouched
    expect(await embedDataset(store.db, { datasetId, backbone: 'faceexpr', tta: 'flip', batch: 3 })).toMatchObject({ computed: 4, skipped: 0, tta: 'flip' });
    expect(await embedDataset(store.db, { datasetId, backbone: 'faceexpr', tta: 'flip' })).toMatchObject({ computed: 0, skipped: 4 });
    const versions = store.db.prepare(`SELECT backbone_version AS v, count(*) AS n FROM embeddings GROUP BY 1 ORDER BY 1`).all();
    expect(versions).toEqual([
      { v: version, n: 4 },
      { v: `${version}${FLIP_SUFFIX}`, n: 4 },
    ]);
    const none = loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr', tta: 'none' });
    const flip = loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr', tta: 'flip' });
    expect(flip.backboneVersion).toBe(`${version}${FLIP_SUFFIX}`);
    expect(none.imageIds).toEqual(flip.imageIds);
    expect(maxAbsDiff(none.data, flip.data)).toBeGreaterThan(1e-3);
    // the flip rows are the mean of each face's and its mirror's features
    const plain = new Embedder(BACKBONES['faceexpr']!);
    try {
      const root = join(tmp.dir, 'data');
      const path = (store.db.prepare(`SELECT path FROM images WHERE id = ?`).get(flip.imageIds[0]) as { path: string }).path;
      const face = await decodeRgb(join(root, path));
      const both = plain.run({ images: [face, mirrorRgb(face)] });
      expect(maxAbsDiff(flip.data.subarray(0, 256), meanOfHalves(both, 1))).toBeLessThan(1e-4);
    } finally {
      plain.dispose();
    }
    expect(resolveTta(store.db, datasetId, 'faceexpr')).toBe(DEFAULT_TTA); // both stored: the default
    // an unknown kind is refused at the door, nothing written
    await expect(embedDataset(store.db, { datasetId, backbone: 'faceexpr', tta: 'mirror' as 'flip' })).rejects.toThrow(/tta must be one of none, flip \(got mirror\)/);
    expect(store.db.prepare(`SELECT count(*) AS n FROM embeddings`).get()).toEqual({ n: 8 });
  });

  it('worker threads (the compiled pipeline) store the same flip vectors as this thread', async () => {
    // the worker script exists only in dist/ (npm ci builds it); from the sources embedding runs in this thread
    const compiled = (await import(['..', 'dist', 'src', 'features/embed.js'].join('/'))) as typeof import('../src/features/embed.js');
    const vectors = (): Buffer[] => (store.db.prepare(`SELECT vector FROM embeddings WHERE backbone_version LIKE '%/flip' ORDER BY image_id`).all() as { vector: Buffer }[]).map((r) => r.vector);
    await embedDataset(store.db, { datasetId, backbone: 'faceexpr', tta: 'flip', batch: 3 });
    const local = vectors();
    store.db.prepare(`DELETE FROM embeddings`).run();
    const r = await compiled.embedDataset(store.db, { datasetId, backbone: 'faceexpr', tta: 'flip', batch: 2, workers: 2 });
    expect(r).toMatchObject({ workers: 2, computed: 4, tta: 'flip' });
    const remote = vectors();
    expect(remote).toHaveLength(4);
    remote.forEach((v, i) => {
      const a = new Float32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
      const b = new Float32Array(local[i]!.buffer.slice(local[i]!.byteOffset, local[i]!.byteOffset + local[i]!.byteLength));
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    });
  });

  it('CLI: embed --tta flip says so; a bad --tta and a train on missing flip embeddings are clear errors, nothing written', async () => {
    store.db.close();
    const path = join(tmp.dir, 'test.db');
    let io = captureIo();
    expect(await run(['embed', '--db', path, '--tta', 'mirror'], io)).toBe(1);
    expect(io.stderr.text).toMatch(/--tta must be one of none, flip, got 'mirror'/);
    io = captureIo();
    expect(await run(['embed', '--db', path, '--tta', 'none'], io)).toBe(0);
    expect(io.stdout.text).toMatch(/embed faceexpr \(256-d\) on dataset 'small': computed 4/);
    io = captureIo();
    expect(await run(['train', '--db', path, '--tta', 'flip'], io)).toBe(1);
    expect(io.stderr.text).toMatch(/embeddings missing for 4 of 4 images.*--tta flip|embeddings missing for 4 of 4 images.*`fer-clean embed --backbone faceexpr --dataset small`/);
    store.db = openStore(path);
    expect(store.db.prepare(`SELECT count(*) AS n FROM runs`).get()).toEqual({ n: 0 });
    store.db.close();
    io = captureIo();
    expect(await run(['embed', '--db', path, '--tta', 'flip'], io)).toBe(0);
    expect(io.stdout.text).toMatch(/embed faceexpr \(256-d, flip TTA\) on dataset 'small': computed 4, already stored 0/);
    store.db = openStore(path);
  });
});
