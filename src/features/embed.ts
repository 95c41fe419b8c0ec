import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FerCleanError } from '../errors.js';
import type { DB } from '../store/db.js';
import { getDatasetById, imageFile } from '../store/datasets.js';
import type { BackendChoice } from './backend.js';
import { backboneVersion, DEFAULT_BACKBONE, resolveBackbone, type BackboneInfo } from './backbones.js';
import type { DecodedBatch, FaceEmbedder } from './decode.js';
import { Embedder } from './embedder.js';
import { chooseEmbedBackend, type EmbedBackendPreference } from './engine.js';
import { buildOnnxModel } from './onnx-graph.js';
import { OnnxEmbedder } from './onnx-embedder.js';
import type { FaceSource } from './preprocess.js';
import { countImages, countStored, countUnusable, missingImages, saveEmbeddings } from './store.js';
import { DEFAULT_TTA, TTAS, ttaVersion, withTta, type Tta } from './tta.js';

export interface EmbedOptions {
  datasetId: number;
  /** `faceexpr`, `facerec` or a concatenation such as `faceexpr+facerec` (each part is stored on its own). */
  backbone?: string;
  /** auto (onnxruntime when it loads, else tfjs's order), onnxruntime, or a tfjs backend. */
  backend?: EmbedBackendPreference;
  /** Images per inference batch (and per database transaction). */
  batch?: number;
  /**
   * Worker threads, each owning its own engine: an onnxruntime session with cores / workers intra-op threads,
   * or a wasm/cpu backend (tfjs switches wasm threads off in Node). Default: one per core, at most 8. 0 runs in
   * this thread (onnxruntime then uses every core). The native tensorflow backend always runs in this thread.
   */
  workers?: number;
  /** Only images of this split (default: all). */
  split?: string;
  /** At most this many missing images per backbone part, in image id order (benchmarks, trials). */
  limit?: number;
  /** Test-time augmentation: 'flip' stores the mean of each face's and its mirror's features (tta.ts); default DEFAULT_TTA. */
  tta?: Tta;
}

export interface EmbedResult {
  /** Embeddings computed now (an image counts once per backbone part). */
  computed: number;
  /** Embeddings already stored at the current version, so not recomputed. */
  skipped: number;
  backend: BackendChoice;
  /** Worker threads used (0: inference ran in this thread). */
  workers: number;
  /** Images left out because their quality flag makes them unusable (no face, several faces): see `report`. */
  unusable: number;
  seconds: number;
  /** The test-time augmentation the embeddings were computed (or found stored) with. */
  tta: Tta;
}

/** 16 is as fast as 32 or 64 on wasm and keeps each worker's activations (and wasm heap) small. */
export const DEFAULT_BATCH = 16;
export const MAX_DEFAULT_WORKERS = 8;

/** One unit of work: a batch of images for one backbone part. */
export interface ChunkMessage {
  seq: number;
  backbone: string;
  faces: FaceSource[];
}
/** Tells a worker to finish: drop queued chunks, release its engine, close its port (it then exits by itself). */
export interface CloseMessage {
  close: true;
}
export type ParentMessage = ChunkMessage | CloseMessage;
export interface WorkerInit {
  backend: string;
  backbones: string[];
  /** onnxruntime only: each backbone's serialised graph, and intra-op threads per session. */
  onnx?: { models: Record<string, Uint8Array>; threads: number };
  /** Test-time augmentation each embedder applies (absent: none). */
  tta?: Tta;
}
export type WorkerReply =
  | { type: 'ready'; backend: BackendChoice }
  | { type: 'result'; seq: number; vectors: Float32Array }
  | { type: 'error'; seq: number; message: string; ferClean: boolean };

interface Job {
  part: BackboneInfo;
  version: string;
  ids: number[];
  faces: FaceSource[];
}

/** The compiled worker script beside this module; absent when running from TypeScript sources (tests). */
function workerScript(): string | undefined {
  const here = fileURLToPath(import.meta.url);
  if (!here.endsWith('.js')) return undefined;
  const script = join(here, '..', 'embed-worker.js');
  return existsSync(script) ? script : undefined;
}

/**
 * Computes the embeddings a dataset is missing for a backbone (all parts of a concatenation), batch by batch,
 * committing each batch so that an interrupted run resumes where it stopped. A file that cannot be decoded
 * stops the run with a FerCleanError naming its absolute path.
 */
export async function embedDataset(
  db: DB,
  opts: EmbedOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<EmbedResult> {
  const started = performance.now();
  const resolved = resolveBackbone(opts.backbone ?? DEFAULT_BACKBONE);
  const batch = opts.batch ?? DEFAULT_BATCH;
  const tta = opts.tta ?? DEFAULT_TTA;
  if (!TTAS.includes(tta)) throw new FerCleanError(`tta must be one of ${TTAS.join(', ')} (got ${String(tta)})`);
  if (!Number.isInteger(batch) || batch < 1) throw new FerCleanError(`--batch must be a positive integer (got ${batch})`);
  if (opts.workers !== undefined && (!Number.isInteger(opts.workers) || opts.workers < 0)) {
    throw new FerCleanError(`--workers must be 0 or a positive integer (got ${opts.workers})`);
  }
  const dataset = getDatasetById(db, opts.datasetId);
  if (opts.split !== undefined && countImages(db, dataset.id, opts.split) === 0) {
    const splits = (db.prepare(`SELECT DISTINCT split FROM images WHERE dataset_id = ? ORDER BY split`).all(dataset.id) as { split: string }[]).map((r) => r.split);
    throw new FerCleanError(`dataset '${dataset.name}' has no images in split '${opts.split}' (splits: ${splits.join(', ') || 'none'})`);
  }

  const jobs: Job[] = [];
  let skipped = 0;
  let total = 0;
  for (const part of resolved.parts) {
    const version = ttaVersion(backboneVersion(part), tta);
    const pending = missingImages(db, dataset.id, part.id, version, { split: opts.split, limit: opts.limit });
    skipped += countStored(db, dataset.id, part.id, version, opts.split);
    total += pending.length;
    for (let i = 0; i < pending.length; i += batch) {
      const slice = pending.slice(i, i + batch);
      jobs.push({ part, version, ids: slice.map((p) => p.id), faces: slice.map((p) => ({ file: imageFile(dataset.root, p.path), box: p.box })) });
    }
  }

  const backend = await chooseEmbedBackend(opts.backend ?? 'auto');
  let done = 0;
  onProgress?.(0, total);
  const save = (job: Job, vectors: Float32Array): void => {
    saveEmbeddings(db, { ids: job.ids, vectors }, job.part, job.version, backend.name);
    done += job.ids.length;
    onProgress?.(done, total);
  };

  const script = workerScript();
  let workers = backend.name === 'tensorflow' || !script ? 0 : (opts.workers ?? Math.min(availableParallelism(), MAX_DEFAULT_WORKERS));
  workers = Math.min(workers, jobs.length);
  let choice = backend;
  const onnx =
    backend.name === 'onnxruntime' && jobs.length > 0
      ? {
          models: Object.fromEntries(resolved.parts.map((p) => [p.id, buildOnnxModel(p)])),
          threads: Math.max(1, Math.floor(availableParallelism() / Math.max(1, workers))),
        }
      : undefined;
  const make = onnx
    ? async (part: BackboneInfo): Promise<FaceEmbedder> => withTta(await OnnxEmbedder.create(part, onnx.models[part.id]!, onnx.threads), tta)
    : async (part: BackboneInfo): Promise<FaceEmbedder> => withTta(new Embedder(part), tta);
  const threads = onnx ? `, ${onnx.threads} onnxruntime thread${onnx.threads > 1 ? 's' : ''} each` : '';
  if (jobs.length === 0) {
    // nothing to do
  } else if (workers === 0) {
    await runInProcess(jobs, resolved.parts, make, save);
    if (opts.workers && !script) choice = { ...backend, reason: `${backend.reason}; in this thread (worker script not built)` };
    else if (onnx) choice = { ...backend, reason: `${backend.reason}; in this thread${threads}` };
  } else {
    await runInWorkers(jobs, { backend: backend.name, backbones: resolved.parts.map((p) => p.id), onnx, tta }, workers, save);
    const why = backend.name === 'wasm' ? ' (tfjs switches wasm threads off in Node)' : '';
    choice = { ...backend, reason: `${backend.reason}; ${workers} worker thread${workers > 1 ? 's' : ''}, each with its own ${backend.name} ${onnx ? 'session' : 'backend'}${threads}${why}` };
  }
  const unusable = countUnusable(db, dataset.id, opts.split);
  return { computed: done, skipped, backend: choice, workers, unusable, seconds: (performance.now() - started) / 1000, tta };
}

/** In this thread: decode batch k+1 (sharp, libuv threads) while batch k runs through the network. */
async function runInProcess(
  jobs: Job[],
  parts: BackboneInfo[],
  make: (part: BackboneInfo) => Promise<FaceEmbedder>,
  onResult: (job: Job, vectors: Float32Array) => void,
): Promise<void> {
  const embedders = new Map<string, FaceEmbedder>();
  const decode = (job: Job): Promise<DecodedBatch> => {
    const p = embedders.get(job.part.id)!.decode(job.faces);
    p.catch(() => undefined); // awaited in its turn below
    return p;
  };
  try {
    for (const p of parts) embedders.set(p.id, await make(p));
    let next = decode(jobs[0]!);
    for (let k = 0; k < jobs.length; k++) {
      const decoded = await next;
      if (k + 1 < jobs.length) next = decode(jobs[k + 1]!);
      onResult(jobs[k]!, await embedders.get(jobs[k]!.part.id)!.run(decoded));
    }
  } finally {
    for (const e of embedders.values()) e.dispose();
  }
}

/** Two chunks in flight per worker, so each has the next one decoding while it computes. */
const IN_FLIGHT = 2;
const CLOSE_TIMEOUT_MS = 30_000;

function runInWorkers(jobs: Job[], init: WorkerInit, count: number, onResult: (job: Job, vectors: Float32Array) => void): Promise<void> {
  const script = workerScript()!;
  const pool: Worker[] = [];
  let nextJob = 0;
  let finished = 0;
  let settled = false;

  return new Promise<void>((resolve, reject) => {
    let exited = 0;
    let outcome: Error | undefined;
    const done = (): void => (outcome ? reject(outcome) : resolve());
    /**
     * Ends the run. Workers are asked to close and exit on their own rather than terminated: terminating a thread
     * that holds onnxruntime sessions can abort the whole process (onnxruntime-node 1.30 throws from a finaliser,
     * "terminate called after throwing an instance of 'Napi::Error'"). A worker still there after
     * CLOSE_TIMEOUT_MS is terminated.
     */
    const stop = (e?: Error): void => {
      if (settled) return;
      settled = true;
      outcome = e;
      const close: CloseMessage = { close: true };
      for (const w of pool) w.postMessage(close);
      setTimeout(() => {
        for (const w of pool) void w.terminate();
      }, CLOSE_TIMEOUT_MS).unref();
      if (exited === pool.length) done();
    };
    const send = (w: Worker): void => {
      if (nextJob >= jobs.length) return;
      const seq = nextJob++;
      const job = jobs[seq]!;
      const msg: ChunkMessage = { seq, backbone: job.part.id, faces: job.faces };
      w.postMessage(msg);
    };
    for (let i = 0; i < count; i++) {
      const w = new Worker(script, { workerData: init });
      pool.push(w);
      w.on('message', (m: WorkerReply) => {
        if (settled) return;
        if (m.type === 'ready') {
          for (let j = 0; j < IN_FLIGHT; j++) send(w);
        } else if (m.type === 'result') {
          try {
            onResult(jobs[m.seq]!, m.vectors);
          } catch (e) {
            stop(e as Error);
            return;
          }
          finished++;
          if (finished === jobs.length) stop();
          else send(w);
        } else {
          stop(m.ferClean ? new FerCleanError(m.message) : new Error(`embed worker: ${m.message}`));
        }
      });
      w.on('error', (e) => stop(new Error(`embed worker crashed: ${e.stack ?? e.message}`)));
      w.on('exit', (code) => {
        exited++;
        if (!settled) stop(new Error(`embed worker exited early with code ${code}`));
        else if (exited === pool.length) done();
      });
    }
  });
}
