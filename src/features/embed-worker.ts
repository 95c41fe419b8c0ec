/**
 * Worker thread for `embed`: owns one engine (an onnxruntime session per backbone, or a tfjs wasm/cpu backend
 * and one Embedder per backbone), decodes each chunk as soon as it arrives (sharp runs on libuv threads) and
 * runs inference on chunks in arrival order, so decoding the next chunk overlaps inference on this one.
 * Messages are described in embed.ts. The onnxruntime path never loads tfjs (modules imported on demand).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isFerCleanError } from '../errors.js';
import type { BackendChoice, BackendPreference } from './backend.js';
import { BACKBONES } from './backbones.js';
import type { DecodedBatch, FaceEmbedder } from './decode.js';
import type { ChunkMessage, ParentMessage, WorkerInit, WorkerReply } from './embed.js';
import { withTta } from './tta.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

function failure(e: unknown): { message: string; ferClean: boolean } {
  return { message: isFerCleanError(e) ? e.message : ((e as Error).stack ?? String(e)), ferClean: isFerCleanError(e) };
}

/** This thread's engine and one embedder per backbone. */
async function start(): Promise<{ backend: BackendChoice; embedders: Map<string, FaceEmbedder> }> {
  const embedders = new Map<string, FaceEmbedder>();
  const onnx = init.onnx;
  if (onnx) {
    const { OnnxEmbedder } = await import('./onnx-embedder.js');
    for (const id of init.backbones) embedders.set(id, withTta(await OnnxEmbedder.create(BACKBONES[id]!, onnx.models[id]!, onnx.threads), init.tta ?? 'none'));
    return { backend: { name: 'onnxruntime', provider: 'onnxruntime-node', reason: 'native CPU kernels' }, embedders };
  }
  const { initBackend } = await import('./backend.js');
  const { Embedder } = await import('./embedder.js');
  const backend = await initBackend(init.backend as BackendPreference);
  for (const id of init.backbones) embedders.set(id, withTta(new Embedder(BACKBONES[id]!), init.tta ?? 'none'));
  return { backend, embedders };
}

try {
  const { backend, embedders } = await start();
  const queue: { chunk: ChunkMessage; decoded: Promise<DecodedBatch> }[] = [];
  let busy = false;
  let draining: Promise<void> = Promise.resolve();
  let closing = false;

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (queue.length && !closing) {
      const { chunk, decoded } = queue.shift()!;
      try {
        const vectors = await embedders.get(chunk.backbone)!.run(await decoded);
        post({ type: 'result', seq: chunk.seq, vectors }, [vectors.buffer as ArrayBuffer]);
      } catch (e) {
        post({ type: 'error', seq: chunk.seq, ...failure(e) });
      }
    }
    busy = false;
  };

  port.on('message', (m: ParentMessage) => {
    if ('close' in m) {
      // finish the chunk in hand, drop the rest, free the engine, then let the thread end by itself
      closing = true;
      queue.length = 0;
      void draining
        .then(() => Promise.all([...embedders.values()].map((e) => e.dispose())))
        .finally(() => port.close());
      return;
    }
    const decoded = embedders.get(m.backbone)!.decode(m.faces);
    decoded.catch(() => undefined); // handled when its turn comes in drain()
    queue.push({ chunk: m, decoded });
    if (!busy) draining = drain();
  });
  post({ type: 'ready', backend });
} catch (e) {
  post({ type: 'error', seq: -1, ...failure(e) });
}
