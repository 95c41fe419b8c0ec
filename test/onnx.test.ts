import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../src/features/backend.js';
import { BACKBONES, manifestPath } from '../src/features/backbones.js';
import type { DecodedBatch, FaceEmbedder } from '../src/features/decode.js';
import { embedDataset, type WorkerInit, type WorkerReply } from '../src/features/embed.js';
import { Embedder } from '../src/features/embedder.js';
import { chooseEmbedBackend } from '../src/features/engine.js';
import { loadWeightMap } from '../src/features/nets.js';
import { OnnxEmbedder } from '../src/features/onnx-embedder.js';
import { buildOnnxModel, readWeights } from '../src/features/onnx-graph.js';
import { toNchwBatch } from '../src/features/onnx-input.js';
import { MEAN_RGB } from '../src/features/backbones.js';
import { toInputBatch, type FaceSource } from '../src/features/preprocess.js';
import { ingest } from '../src/ingest/index.js';
import { openStore } from '../src/store/db.js';
import { fixture, tempDir } from './helpers.js';

/**
 * Every distinct face image among the fixtures, by content; bad/ excluded, and demo/ (the demo's 5,500 faces, too
 * many for a unit test) and photos/ (uncropped photos for face detection, not faces).
 */
const SKIPPED_FIXTURES = ['bad', 'demo', 'photos'];
function fixtureFaces(): string[] {
  const seen = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (!SKIPPED_FIXTURES.includes(name)) walk(p);
      } else if (/\.(png|jpe?g)$/i.test(name)) {
        const h = createHash('sha1').update(readFileSync(p)).digest('hex');
        if (!seen.has(h)) seen.set(h, p);
      }
    }
  };
  walk(fixture());
  return [...seen.values()];
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * The wasm path's features of every face, stored under fixtures/onnx-reference/ so that this file does not run
 * facerec on wasm for 324 faces (about 10 CPU s) on every `npm test`. Each test checks that the stored reference
 * still is what the wasm path computes (on a sample, live), then holds onnxruntime to it on every face.
 * Regenerate after changing the fixtures, tfjs or the weights: FER_UPDATE_ONNX_REFERENCE=1 npx vitest run test/onnx.test.ts
 */
const REFERENCE = fixture('onnx-reference');
const UPDATE = process.env['FER_UPDATE_ONNX_REFERENCE'] === '1';
/** Faces checked live on wasm against the stored reference: spread over the list, the synthetic three included. */
const LIVE = 12;

let tmp: { dir: string; cleanup: () => void };
let faces: FaceSource[];
/** A stable name per face: its path under fixtures/, with the crop or box for the synthetic ones. */
let keys: string[];

beforeAll(async () => {
  await initBackend('wasm');
  tmp = tempDir();
  const files = fixtureFaces();
  // non-square crops (taller, and wider by an odd amount) exercise padToSquare; a boxed face, the box path
  const face = fixture('ferplus', 'images/train/fer0014103.png');
  const tall = join(tmp.dir, 'tall.png');
  const wide = join(tmp.dir, 'wide.png');
  await sharp(face).extract({ left: 4, top: 0, width: 40, height: 48 }).toFile(tall);
  await sharp(face).extract({ left: 0, top: 5, width: 48, height: 37 }).toFile(wide);
  faces = [
    ...files.map((file) => ({ file, box: null })),
    { file: tall, box: null },
    { file: wide, box: null },
    { file: face, box: { x: 3, y: 7, w: 30, h: 41 } },
  ];
  const name = relative(fixture(), face);
  keys = [...files.map((f) => relative(fixture(), f)), `${name} crop 4,0 40x48`, `${name} crop 0,5 48x37`, `${name} box 3,7 30x41`];
});

afterAll(() => tmp.cleanup());

/** Features of all faces in batches of 32. */
async function features(e: FaceEmbedder, all: FaceSource[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < all.length; i += 32) {
    const batch: DecodedBatch = await e.decode(all.slice(i, i + 32));
    const v = await e.run(batch);
    const dim = v.length / batch.images.length;
    for (let k = 0; k < batch.images.length; k++) out.push(v.slice(k * dim, (k + 1) * dim));
  }
  return out;
}

describe('onnxruntime backbones', () => {
  it('reads the weights exactly as tfjs decodes them (dequantised uint8 included)', () => {
    for (const info of Object.values(BACKBONES)) {
      const ours = readWeights(manifestPath(info));
      const theirs = loadWeightMap(manifestPath(info));
      expect([...ours.keys()].sort()).toEqual(Object.keys(theirs).sort());
      for (const [name, w] of ours) {
        expect(w.shape, name).toEqual(theirs[name]!.shape);
        const t = theirs[name]!.dataSync();
        let differ = 0;
        for (let i = 0; i < t.length; i++) if (w.data[i] !== t[i]) differ++;
        expect(differ, name).toBe(0);
      }
      tf.dispose(Object.values(theirs));
    }
  });

  it('prepares the network input as tfjs does: pad to square, bilinear resize, (rgb - mean) / 255, NCHW', async () => {
    const decoded = await new Embedder(BACKBONES['faceexpr']!).decode(faces.slice(-3)); // tall, wide, boxed
    for (const size of [112, 150]) {
      const ours = toNchwBatch(decoded.images, size);
      const theirs = tf.tidy(() => {
        const x = toInputBatch(decoded.images, size);
        return tf.transpose(tf.div(tf.sub(x, tf.tensor1d([...MEAN_RGB])), 255), [0, 3, 1, 2]).dataSync();
      });
      expect(ours).toHaveLength(theirs.length);
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
      expect(worst).toBeLessThan(1e-5);
    }
  });

  // the cache keeps one backbone_version for both engines because of this test
  for (const id of ['faceexpr', 'facerec'] as const) {
    it(`${id}: the same features as the tfjs wasm path, cosine >= 0.9999 on every fixture face`, async () => {
      const info = BACKBONES[id]!;
      const wasm = new Embedder(info);
      const ort = await OnnxEmbedder.create(info, buildOnnxModel(info), 2);
      const file = join(REFERENCE, `${id}.f32`);
      try {
        if (UPDATE) {
          mkdirSync(REFERENCE, { recursive: true });
          const all = await features(wasm, faces);
          writeFileSync(file, Buffer.concat(all.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))));
          writeFileSync(join(REFERENCE, 'faces.txt'), keys.join('\n') + '\n');
        }
        const hint = 'run FER_UPDATE_ONNX_REFERENCE=1 npx vitest run test/onnx.test.ts';
        expect(existsSync(file), `${file} missing: ${hint}`).toBe(true);
        expect(readFileSync(join(REFERENCE, 'faces.txt'), 'utf8').trim().split('\n'), `fixture faces changed: ${hint}`).toEqual(keys);
        const bytes = readFileSync(file);
        const stored = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        expect(stored).toHaveLength(faces.length * info.dim);
        const reference = faces.map((_, i) => stored.subarray(i * info.dim, (i + 1) * info.dim));

        // the stored reference is what the wasm path computes today (live on a sample, to float rounding)
        const sample = [...Array.from({ length: LIVE - 3 }, (_, k) => Math.floor((k * (faces.length - 3)) / (LIVE - 3))), faces.length - 3, faces.length - 2, faces.length - 1];
        const live = await features(wasm, sample.map((i) => faces[i]!));
        sample.forEach((i, k) => expect(cosine(live[k]!, reference[i]!), `${keys[i]}: ${hint}`).toBeGreaterThanOrEqual(0.999999));

        // onnxruntime on every face
        const b = await features(ort, faces);
        expect(b).toHaveLength(faces.length);
        let worst = { cos: 1, key: '' };
        b.forEach((v, i) => {
          expect(v).toHaveLength(info.dim);
          const c = cosine(reference[i]!, v);
          if (!(c >= worst.cos)) worst = { cos: c, key: keys[i]! };
        });
        expect(worst.cos, `worst face ${worst.key}`).toBeGreaterThanOrEqual(0.9999);
      } finally {
        wasm.dispose();
        ort.dispose();
      }
    });
  }
});

describe('choosing the engine', () => {
  it('auto picks onnxruntime when it loads; a tfjs backend can be forced', async () => {
    expect(await chooseEmbedBackend('auto')).toMatchObject({ name: 'onnxruntime', provider: 'onnxruntime-node 1.30.0' });
    expect(await chooseEmbedBackend('onnxruntime')).toMatchObject({ name: 'onnxruntime' });
    expect(await chooseEmbedBackend('wasm')).toMatchObject({ name: 'wasm' });
    await expect(chooseEmbedBackend('gpu' as never)).rejects.toThrow(/unknown backend 'gpu' \(choose auto, onnxruntime, tensorflow, wasm, cpu\)/);
  });

  it('embedDataset on onnxruntime: in this thread and in worker threads, stored under the same version as wasm', async () => {
    const lines = readFileSync(fixture('ferplus', 'labels.csv'), 'utf8').trim().split('\n');
    const rows = lines.slice(1, 9);
    const root = join(tmp.dir, 'data');
    for (const r of rows) {
      const path = r.split(',')[0]!;
      mkdirSync(dirname(join(root, path)), { recursive: true });
      copyFileSync(fixture('ferplus', path), join(root, path));
    }
    writeFileSync(join(root, 'labels.csv'), [lines[0], ...rows].join('\n') + '\n');
    const db = openStore(join(tmp.dir, 'onnx.db'));
    try {
      const datasetId = (await ingest(db, { source: join(root, 'labels.csv'), name: 'small' })).dataset.id;
      const stored = () =>
        db.prepare(`SELECT image_id, backbone_version, backend, vector FROM embeddings WHERE backbone = 'faceexpr' ORDER BY image_id`).all() as {
          image_id: number;
          backbone_version: string;
          backend: string;
          vector: Buffer;
        }[];
      const asVector = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

      expect(await embedDataset(db, { datasetId, backend: 'wasm', workers: 0 })).toMatchObject({ computed: 8 });
      const wasm = stored();
      db.prepare(`DELETE FROM embeddings`).run();
      const r = await embedDataset(db, { datasetId, batch: 3, workers: 0 });
      expect(r).toMatchObject({ computed: 8, backend: { name: 'onnxruntime' } });
      const ort = stored();
      expect(ort.map((x) => x.backend)).toEqual(Array(8).fill('onnxruntime'));
      expect(ort.map((x) => x.backbone_version)).toEqual(wasm.map((x) => x.backbone_version));
      ort.forEach((x, i) => expect(cosine(asVector(x.vector), asVector(wasm[i]!.vector))).toBeGreaterThanOrEqual(0.9999));
      // a wasm-computed cache counts as done for onnxruntime (one version): nothing to recompute
      expect(await embedDataset(db, { datasetId })).toMatchObject({ computed: 0, skipped: 8 });

      // worker threads (the compiled pipeline, as npm ci builds it) store the same bytes as this thread
      const compiled = (await import(['..', 'dist', 'src', 'features/embed.js'].join('/'))) as typeof import('../src/features/embed.js');
      db.prepare(`DELETE FROM embeddings`).run();
      const w = await compiled.embedDataset(db, { datasetId, backbone: 'faceexpr', batch: 3, workers: 2 });
      expect(w).toMatchObject({ computed: 8, workers: 2, backend: { name: 'onnxruntime' } });
      expect(stored().map((x) => x.vector)).toEqual(ort.map((x) => x.vector));
    } finally {
      db.close();
    }
  });

  it('a worker asked to close releases its onnxruntime sessions and exits by itself', async () => {
    // embedDataset used to terminate its workers; terminating a thread that holds onnxruntime sessions now and
    // then aborted the whole process ("terminate called after throwing an instance of 'Napi::Error'"), a race
    // this test cannot force. It checks the protocol that replaced it: a close message, then a clean exit.
    const info = BACKBONES['faceexpr']!;
    const init: WorkerInit = { backend: 'onnxruntime', backbones: [info.id], onnx: { models: { [info.id]: buildOnnxModel(info) }, threads: 1 } };
    const w = new Worker(resolve('dist', 'src', 'features', 'embed-worker.js'), { workerData: init });
    const replies: WorkerReply[] = [];
    w.on('message', (m: WorkerReply) => replies.push(m));
    const exited = new Promise<number>((res) => w.once('exit', res));
    await new Promise((res) => w.once('message', res));
    expect(replies[0]).toMatchObject({ type: 'ready', backend: { name: 'onnxruntime' } });
    w.postMessage({ seq: 0, backbone: info.id, faces: faces.slice(0, 2) });
    await new Promise((res) => w.once('message', res));
    expect(replies[1]).toMatchObject({ type: 'result', seq: 0 });
    w.postMessage({ close: true });
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 20_000).unref());
    const outcome = await Promise.race([exited, timeout]);
    if (outcome === 'timeout') await w.terminate();
    expect(outcome).toBe(0);
  });
});
