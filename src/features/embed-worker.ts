/**
 * Worker thread for `embed`: owns one tfjs backend (wasm or cpu) and one Embedder per backbone, decodes each
 * chunk as soon as it arrives (sharp runs on libuv threads) and runs inference on chunks in arrival order, so
 * decoding the next chunk overlaps inference on this one. Messages are described in embed.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isFerCleanError } from '../errors.js';
import { initBackend, type BackendPreference } from './backend.js';
import { BACKBONES } from './backbones.js';
import { Embedder, type DecodedBatch } from './embedder.js';
import type { ChunkMessage, WorkerInit, WorkerReply } from './embed.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

function failure(e: unknown): { message: string; ferClean: boolean } {
  return { message: isFerCleanError(e) ? e.message : ((e as Error).stack ?? String(e)), ferClean: isFerCleanError(e) };
}

try {
  const backend = await initBackend(init.backend as BackendPreference);
  const embedders = new Map(init.backbones.map((id) => [id, new Embedder(BACKBONES[id]!)]));
  const queue: { chunk: ChunkMessage; decoded: Promise<DecodedBatch> }[] = [];
  let busy = false;

  const drain = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (queue.length) {
      const { chunk, decoded } = queue.shift()!;
      try {
        const vectors = embedders.get(chunk.backbone)!.run(await decoded);
        post({ type: 'result', seq: chunk.seq, vectors }, [vectors.buffer as ArrayBuffer]);
      } catch (e) {
        post({ type: 'error', seq: chunk.seq, ...failure(e) });
      }
    }
    busy = false;
  };

  port.on('message', (m: ChunkMessage) => {
    const decoded = embedders.get(m.backbone)!.decode(m.faces);
    decoded.catch(() => undefined); // handled when its turn comes in drain()
    queue.push({ chunk: m, decoded });
    void drain();
  });
  post({ type: 'ready', backend });
} catch (e) {
  post({ type: 'error', seq: -1, ...failure(e) });
}
