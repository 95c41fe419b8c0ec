import { FerCleanError } from '../errors.js';
import { initBackend, type BackendChoice, type BackendPreference } from './backend.js';
import { loadOnnxRuntime } from './onnx-embedder.js';

/**
 * Which engine computes embeddings: onnxruntime-node's native CPU kernels when it loads, else a tfjs backend
 * (tfjs-node-gpu, tfjs-node, wasm, cpu; backend.ts). SCN training keeps using tfjs (backend.ts) either way.
 */
export type EmbedBackendPreference = 'onnxruntime' | BackendPreference;
export const EMBED_BACKENDS: readonly EmbedBackendPreference[] = ['auto', 'onnxruntime', 'tensorflow', 'wasm', 'cpu'];

/**
 * Picks the embedding engine: under `auto` onnxruntime-node when it loads, else tfjs's own `auto` order; or
 * exactly the one asked for (a FerCleanError when it is not available).
 */
export async function chooseEmbedBackend(pref: EmbedBackendPreference = 'auto'): Promise<BackendChoice> {
  if (!EMBED_BACKENDS.includes(pref)) throw new FerCleanError(`unknown backend '${pref}' (choose ${EMBED_BACKENDS.join(', ')})`);
  let failure: string | undefined;
  if (pref === 'auto' || pref === 'onnxruntime') {
    try {
      const ort = await loadOnnxRuntime();
      return { name: 'onnxruntime', provider: `onnxruntime-node ${ort.env.versions.node ?? ''}`.trim(), reason: 'native CPU kernels from onnxruntime-node' };
    } catch (e) {
      failure = (e as Error).message;
      if (pref === 'onnxruntime') throw new FerCleanError(`backend 'onnxruntime' is not available: ${failure}`);
    }
  }
  const tfjs = await initBackend(pref === 'auto' ? 'auto' : (pref as BackendPreference));
  return failure ? { ...tfjs, reason: `${failure}; ${tfjs.reason}` } : tfjs;
}
