/**
 * Worker thread for confident learning (cl.ts): trains the ce head of one fold at a time, as the parent asks, on
 * the features it shares (a SharedArrayBuffer, never copied), and sends back each epoch's figures and the fold's
 * probabilities for every row. Messages are described in cl.ts. A 'close' message aborts a training under way and
 * lets the thread end on its own (terminating a thread that holds onnxruntime sessions can abort the process).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ClWorkerInit, ClWorkerReply, ClParentMessage } from './cl.js';
import { chooseHeadEngine } from './engine.js';
import { trainHead } from './train.js';

const port = parentPort!;
const init = workerData as ClWorkerInit;
const post = (m: ClWorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const stop = new AbortController();
const features = new Float32Array(init.features);
let queue: Promise<void> = Promise.resolve();

async function runFold(m: Extract<ClParentMessage, { type: 'fold' }>): Promise<void> {
  try {
    const engine = await chooseHeadEngine(init.engine);
    const r = await trainHead(
      { features, dim: init.dim, classes: init.classes, labels: init.labels, train: m.fit, valid: init.valid, trusted: init.trusted },
      { ...init.head, standardize: false, method: 'ce', seed: m.seed, engine },
      (stats) => post({ type: 'epoch', fold: m.fold, stats }),
      stop.signal,
    );
    post({ type: 'done', fold: m.fold, probs: r.probs }, [r.probs.buffer as ArrayBuffer]);
  } catch (e) {
    if (!stop.signal.aborted) post({ type: 'error', fold: m.fold, message: (e as Error).stack ?? String(e) });
  }
}

port.on('message', (m: ClParentMessage) => {
  if (m.type === 'close') {
    stop.abort(new Error('closed'));
    void queue.then(() => port.close());
    return;
  }
  queue = queue.then(() => runFold(m));
});
