import * as tf from '@tensorflow/tfjs';
import { FerCleanError } from '../errors.js';

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface BackendChoice {
  /** tfjs backend name now active: tensorflow | wasm | cpu */
  name: string;
  /** Which package provides it (e.g. @tensorflow/tfjs-node-gpu). */
  provider: string;
  /** Why this one: what was tried before it and why that failed. */
  reason: string;
}

let active: BackendChoice | undefined;

// The library never prints: PROD silences tfjs's console advice (e.g. "install tfjs-node" from the cpu backend).
tf.env().set('PROD', true);

async function tryNative(): Promise<{ provider: string } | { failures: string[] }> {
  const failures: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (tf.findBackend('tensorflow')) return { provider: pkg };
      failures.push(`${pkg} imported but registered no backend`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      failures.push(code === 'ERR_MODULE_NOT_FOUND' ? `${pkg} not installed` : `${pkg} failed to load (${(e as Error).message.split('\n')[0]})`);
    }
  }
  return { failures };
}

async function tryWasm(): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    if (await tf.setBackend('wasm')) return undefined;
    return 'wasm backend failed to initialise';
  } catch (e) {
    return `@tensorflow/tfjs-backend-wasm failed to load (${(e as Error).message.split('\n')[0]})`;
  }
}

/**
 * Picks and activates the fastest tfjs backend available, in the order tfjs-node-gpu, tfjs-node, wasm, pure-JS cpu
 * under `auto`, or exactly the one asked for (an error when it is not available). Idempotent within a process.
 */
export async function initBackend(pref: BackendPreference = 'auto'): Promise<BackendChoice> {
  if (!BACKEND_PREFERENCES.includes(pref)) {
    throw new FerCleanError(`unknown backend '${pref}' (choose ${BACKEND_PREFERENCES.join(', ')})`);
  }
  if (active && (pref === 'auto' || pref === active.name)) return active;
  const tried: string[] = [];
  if (pref === 'auto' || pref === 'tensorflow') {
    const r = await tryNative();
    if ('provider' in r) {
      await tf.setBackend('tensorflow');
      await tf.ready();
      return (active = { name: 'tensorflow', provider: r.provider, reason: `native TensorFlow from ${r.provider}` });
    }
    tried.push(...r.failures);
    if (pref === 'tensorflow') throw new FerCleanError(`backend 'tensorflow' is not available: ${tried.join('; ')}`);
  }
  if (pref === 'auto' || pref === 'wasm') {
    const failure = await tryWasm();
    if (!failure) {
      await tf.ready();
      const why = tried.length ? `${tried.join('; ')}; using WebAssembly` : 'WebAssembly backend as asked';
      return (active = { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', reason: why });
    }
    tried.push(failure);
    if (pref === 'wasm') throw new FerCleanError(`backend 'wasm' is not available: ${failure}`);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  const why = tried.length ? `${tried.join('; ')}; using the pure-JS cpu backend (slow)` : 'pure-JS cpu backend as asked';
  return (active = { name: 'cpu', provider: '@tensorflow/tfjs', reason: why });
}

export { tf };
