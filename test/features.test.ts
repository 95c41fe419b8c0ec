import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { FerCleanError } from '../src/errors.js';
import { ingest } from '../src/ingest/index.js';
import { initBackend, tf } from '../src/features/backend.js';
import { BACKBONES, backboneVersion, manifestPath, packageDir, resolveBackbone } from '../src/features/backbones.js';
import { embedDataset } from '../src/features/embed.js';
import { Embedder } from '../src/features/embedder.js';
import { faceExpressionFeatures } from '../src/features/nets.js';
import { decodeRgb, toInputBatch } from '../src/features/preprocess.js';
import { loadEmbeddings } from '../src/features/store.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

/** A small ferplus-format dataset: the first N fixture rows, images copied so a test may corrupt one. */
function smallDataset(dir: string, n: number): string {
  const lines = readFileSync(fixture('ferplus', 'labels.csv'), 'utf8').trim().split('\n');
  const rows = lines.slice(1, n + 1);
  for (const r of rows) {
    const path = r.split(',')[0]!;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    copyFileSync(fixture('ferplus', path), join(dir, path));
  }
  const csv = join(dir, 'labels.csv');
  writeFileSync(csv, [lines[0], ...rows].join('\n') + '\n');
  return csv;
}

const N = 6;
const tmp = useTempDir();
const store = useStore(tmp, (dir) => ({ db: openStore(join(dir, 'test.db')) }));
let datasetId: number;
let csv: string;

beforeAll(async () => {
  await initBackend('auto');
});

beforeEach(async () => {
  csv = smallDataset(join(tmp.dir, 'data'), N);
  datasetId = (await ingest(store.db, { source: csv, name: 'small' })).dataset.id;
});

const rowsOf = (backbone: string) =>
  store.db.prepare(`SELECT image_id, backbone_version, dim, vector, created_at FROM embeddings WHERE backbone = ? ORDER BY image_id`).all(backbone) as {
    image_id: number;
    backbone_version: string;
    dim: number;
    vector: Buffer;
    created_at: string;
  }[];

describe('backbones', () => {
  it('resolves single and concatenated backbones, and rejects unknown ones by name', () => {
    expect(resolveBackbone('faceexpr')).toMatchObject({ name: 'faceexpr', dim: 256 });
    expect(resolveBackbone('FaceExpr+facerec')).toMatchObject({ name: 'faceexpr+facerec', dim: 384 });
    expect(() => resolveBackbone('resnet50')).toThrow(/unknown backbone 'resnet50'.*faceexpr, facerec/);
    expect(() => resolveBackbone('faceexpr+faceexpr')).toThrow(/appears twice/);
  });

  it('reads the weights from the installed @vladmandic/face-api package, versioned by package and preprocessing', () => {
    const pkg = JSON.parse(readFileSync(join(packageDir('@vladmandic/face-api'), 'package.json'), 'utf8')) as { version: string };
    for (const b of Object.values(BACKBONES)) {
      expect(existsSync(manifestPath(b))).toBe(true);
      expect(backboneVersion(b)).toBe(`face-api@${pkg.version}/prep2`);
    }
  });
});

describe('networks', () => {
  // face-api's own classes (its Node build on the same tfjs) are the reference for preprocessing (padToSquare,
  // resizeBilinear, mean subtraction) and the layer graph: they get the decoded images at their own size.
  const faceapi = createRequire(import.meta.url)('@vladmandic/face-api/dist/face-api.node-wasm.js');

  it('match face-api 1.7.15 end to end: expression probabilities and face descriptors', async () => {
    const modelDir = join(packageDir('@vladmandic/face-api'), 'model');
    await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);
    await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
    const face = fixture('ferplus', 'images/train/fer0014103.png');
    // non-square crops (taller, and wider by an odd amount) exercise padToSquare and the mixed-size path
    const tall = join(tmp.dir, 'tall.png');
    const wide = join(tmp.dir, 'wide.png');
    await sharp(face).extract({ left: 4, top: 0, width: 40, height: 48 }).toFile(tall);
    await sharp(face).extract({ left: 0, top: 5, width: 48, height: 37 }).toFile(wide);
    const batches = [[face, fixture('ferplus', 'images/train/fer0015783.png')], [tall, wide]];
    for (const id of ['faceexpr', 'facerec'] as const) {
      const info = BACKBONES[id]!;
      const e = new Embedder(info);
      const exprNet = faceExpressionFeatures(BACKBONES['faceexpr']!);
      for (const files of batches) {
        const decoded = await e.decode(files.map((file) => ({ file, box: null })));
        const input = new faceapi.NetInput(decoded.images.map((im) => tf.tensor3d(Int32Array.from(im.data), [im.height, im.width, 3], 'int32')));
        let ours: tf.Tensor;
        let theirs: tf.Tensor;
        if (id === 'faceexpr') {
          ours = tf.tidy(() => tf.softmax(exprNet.logits(exprNet.features(toInputBatch(decoded.images, info.inputSize)))));
          theirs = faceapi.nets.faceExpressionNet.forwardInput(input);
        } else {
          ours = tf.tensor2d(e.run(decoded), [files.length, info.dim]);
          theirs = faceapi.nets.faceRecognitionNet.forwardInput(input);
        }
        expect(ours.shape).toEqual(theirs.shape);
        expect(tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]).toBeLessThan(1e-4);
      }
      exprNet.dispose();
      e.dispose();
    }
  });
});

describe('embedDataset', () => {
  it('stores one finite vector of the right size per image and backbone, the same on a second computation', async () => {
    const progress: [number, number][] = [];
    const r = await embedDataset(store.db, { datasetId, backbone: 'faceexpr+facerec', batch: 4 }, (d, t) => progress.push([d, t]));
    expect(r).toMatchObject({ computed: 2 * N, skipped: 0 });
    expect(progress.at(-1)).toEqual([2 * N, 2 * N]);
    for (const [id, dim] of [['faceexpr', 256], ['facerec', 128]] as const) {
      const rows = rowsOf(id);
      expect(rows).toHaveLength(N);
      for (const row of rows) {
        expect(row.dim).toBe(dim);
        expect(row.vector.byteLength).toBe(dim * 4);
        const v = new Float32Array(row.vector.buffer.slice(row.vector.byteOffset, row.vector.byteOffset + row.vector.byteLength));
        expect(v.every(Number.isFinite)).toBe(true);
        expect(v.some((x) => x !== 0)).toBe(true);
      }
    }
    // deterministic: recompute everything from scratch and compare bytes
    const before = rowsOf('faceexpr').map((r) => r.vector);
    store.db.prepare(`DELETE FROM embeddings`).run();
    await embedDataset(store.db, { datasetId, backbone: 'faceexpr', batch: 5 });
    expect(rowsOf('faceexpr').map((r) => r.vector)).toEqual(before);
  });

  it('worker threads (the compiled pipeline) store the same vectors as this thread', async () => {
    // the worker script exists only in dist/ (npm ci builds it); from the sources embedding runs in this thread
    const compiled = (await import(['..', 'dist', 'src', 'features/embed.js'].join('/'))) as typeof import('../src/features/embed.js');
    await embedDataset(store.db, { datasetId, backbone: 'faceexpr', batch: 4 });
    const local = rowsOf('faceexpr').map((r) => r.vector);
    store.db.prepare(`DELETE FROM embeddings`).run();
    const r = await compiled.embedDataset(store.db, { datasetId, backbone: 'faceexpr', batch: 2, workers: 2 });
    expect(r.workers).toBe(2);
    expect(r.computed).toBe(N);
    expect(rowsOf('faceexpr').map((x) => x.vector)).toEqual(local);
  });

  it('resumes: only images without an embedding are computed', async () => {
    await embedDataset(store.db, { datasetId, backbone: 'faceexpr' });
    const first = rowsOf('faceexpr');
    // as if interrupted after the first images: drop two
    const dropped = first.slice(-2).map((r) => r.image_id);
    store.db.prepare(`DELETE FROM embeddings WHERE image_id IN (?, ?)`).run(...dropped);
    const r = await embedDataset(store.db, { datasetId, backbone: 'faceexpr' });
    expect(r).toMatchObject({ computed: 2, skipped: N - 2 });
    const again = rowsOf('faceexpr');
    expect(again.slice(0, N - 2)).toEqual(first.slice(0, N - 2)); // untouched rows, created_at included
    expect(again.map((x) => x.vector)).toEqual(first.map((x) => x.vector));
    // nothing left: nothing computed
    expect(await embedDataset(store.db, { datasetId, backbone: 'faceexpr' })).toMatchObject({ computed: 0, skipped: N });
  });

  it('stops on a corrupt image with an error naming its absolute path, keeping what was committed', async () => {
    const root = join(tmp.dir, 'data');
    const victim = (store.db.prepare(`SELECT path FROM images ORDER BY id DESC LIMIT 1`).get() as { path: string }).path;
    copyFileSync(fixture('bad', 'images', 'truncated.png'), join(root, victim));
    const err = await embedDataset(store.db, { datasetId, backbone: 'faceexpr', batch: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerCleanError);
    expect((err as Error).message).toContain(join(root, victim));
    expect((err as Error).message).toMatch(/cannot decode image/);
    expect(rowsOf('faceexpr')).toHaveLength(N - 2); // the batches before the bad one were committed
  });
});

describe('loadEmbeddings', () => {
  it('returns rows in image id order and concatenates backbones per image', async () => {
    await embedDataset(store.db, { datasetId, backbone: 'faceexpr+facerec' });
    const a = loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr' });
    const b = loadEmbeddings(store.db, { datasetId, backbone: 'facerec' });
    const ab = loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr+facerec' });
    const ids = (store.db.prepare(`SELECT id FROM images WHERE dataset_id = ? ORDER BY id`).all(datasetId) as { id: number }[]).map((r) => r.id);
    expect(a.imageIds).toEqual(ids);
    expect(ab).toMatchObject({ imageIds: ids, dim: 384, backboneVersion: `${a.backboneVersion}+${b.backboneVersion}` });
    expect(ab.data).toHaveLength(N * 384);
    for (let i = 0; i < N; i++) {
      expect(ab.data.subarray(i * 384, i * 384 + 256)).toEqual(a.data.subarray(i * 256, (i + 1) * 256));
      expect(ab.data.subarray(i * 384 + 256, (i + 1) * 384)).toEqual(b.data.subarray(i * 128, (i + 1) * 128));
    }
  });

  it('says how many are missing and which command computes them', async () => {
    expect(() => loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr' })).toThrow(
      /faceexpr \(face-api@[\d.]+\/prep2\): embeddings missing for 6 of 6 images of dataset 'small': run `fer-clean embed --backbone faceexpr --dataset small`/,
    );
    await embedDataset(store.db, { datasetId, backbone: 'faceexpr' });
    store.db.prepare(`DELETE FROM embeddings WHERE image_id = (SELECT min(id) FROM images)`).run();
    expect(() => loadEmbeddings(store.db, { datasetId, backbone: 'faceexpr+facerec' })).toThrow(/missing for 1 of 6 images.*--backbone faceexpr\+facerec/);
  });
});

describe('fer-clean embed', () => {
  let io: ReturnType<typeof captureIo>;

  it('prints the backend and why, then a summary; a second run computes nothing', async () => {
    store.db.close();
    const path = join(tmp.dir, 'test.db');
    io = captureIo();
    expect(await run(['embed', '--db', path, '--batch', '4'], io)).toBe(0);
    expect(io.stdout.text).toMatch(/^backend: (onnxruntime|wasm|cpu|tensorflow) \(.+\): .+/m);
    expect(io.stdout.text).toMatch(/embed faceexpr \(256-d\) on dataset 'small': computed 6, already stored 0/);
    io = captureIo();
    expect(await run(['embed', '--db', path], io)).toBe(0);
    expect(io.stdout.text).toMatch(/computed 0, already stored 6/);
    io = captureIo();
    expect(await run(['embed', '--db', path, '--backbone', 'vgg'], io)).toBe(1);
    expect(io.stderr.text).toMatch(/unknown backbone 'vgg'/);
    io = captureIo();
    expect(await run(['embed', '--db', path, '--backend', 'gpu'], io)).toBe(1);
    expect(io.stderr.text).toMatch(/--backend must be one of auto, onnxruntime, tensorflow, wasm, cpu/);
    store.db = openStore(path);
  });
});

describe('face boxes', () => {
  it('embeds only the box: a face pasted into a larger canvas gives the vector of the face alone', async () => {
    const face = fixture('ferplus', 'images/train/fer0015783.png');
    const canvas = join(tmp.dir, 'canvas.png');
    await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .composite([{ input: face, left: 50, top: 20 }])
      .png()
      .toFile(canvas);
    const e = new Embedder(BACKBONES['faceexpr']!);
    try {
      const alone = e.run(await e.decode([{ file: face, box: null }]));
      const boxed = e.run(await e.decode([{ file: canvas, box: { x: 50, y: 20, w: 48, h: 48 } }]));
      const whole = e.run(await e.decode([{ file: canvas, box: null }]));
      const diff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      expect(diff(alone, boxed)).toBeLessThan(1e-4);
      expect(diff(alone, whole)).toBeGreaterThan(0.01);
    } finally {
      e.dispose();
    }
  });

  it('names the file when a box lies outside the image, is empty or is not in whole pixels', async () => {
    const face = fixture('ferplus', 'images/train/fer0015783.png');
    await expect(decodeRgb(face, { x: 40, y: 0, w: 10, h: 10 })).rejects.toThrow(/fer0015783\.png: face box \(x 40, y 0, width 10, height 10\) lies outside the 48x48 image/);
    await expect(decodeRgb(face, { x: 0, y: 0, w: 0, h: 10 })).rejects.toThrow(/fer0015783\.png: face box .* is empty/);
    await expect(decodeRgb(face, { x: 0.5, y: 0, w: 4, h: 4 })).rejects.toThrow(/not in whole pixels/);
  });
});
