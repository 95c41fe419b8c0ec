/**
 * All pairs of rows whose cosine similarity reaches a threshold, in a set of embeddings (near-duplicate search).
 * The N x N products are computed block by block as one matrix product on onnxruntime's native kernels (a Gemm
 * graph built here, the embeddings held as its constant): 35,710 x 256 takes seconds, where a JavaScript loop takes
 * minutes. Without onnxruntime the same pairs come from a plain loop (cosinePairsJs), which the tests hold it to.
 */
import onnxProto from 'onnx-proto';
import { loadOnnxRuntime } from '../features/onnx-embedder.js';
import { encodeModel, tensorType } from '../features/onnx-model.js';

const { onnx } = onnxProto;

/** A pair of rows (i < j) and their cosine similarity. */
export interface CosinePair {
  i: number;
  j: number;
  cos: number;
}

/** Rows scaled to unit length (a zero row stays zero), so that a dot product is the cosine. */
export function unitRows(data: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < data.length / dim; r++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += data[r * dim + k]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dim; k++) out[r * dim + k] = data[r * dim + k]! * inv;
  }
  return out;
}

/** The pairs (i < j) of unit rows with cosine >= threshold, by a plain loop: the reference, and the fallback. */
export function cosinePairsJs(unit: Float32Array, dim: number, threshold: number): CosinePair[] {
  const n = unit.length / dim;
  const pairs: CosinePair[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += unit[i * dim + k]! * unit[j * dim + k]!;
      if (s >= threshold) pairs.push({ i, j, cos: s });
    }
  }
  return pairs;
}

/** ONNX model: Y[B, M] = X[B, dim] . E[M, dim]^T, then the places (b, m) and values where Y >= t. */
function gemmModel(dim: number): Uint8Array {
  return encodeModel({
    name: 'cosine',
    node: [
      { opType: 'Gemm', input: ['x', 'e'], output: ['y'], attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
      // only the places at or above the threshold leave the graph: scanning B x N floats in JavaScript took longer than the product
      { opType: 'GreaterOrEqual', input: ['y', 't'], output: ['hit'] },
      { opType: 'NonZero', input: ['hit'], output: ['where'] },
      { opType: 'Transpose', input: ['where'], output: ['idx'], attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] }] },
      { opType: 'GatherND', input: ['y', 'idx'], output: ['cos'] },
    ],
    input: [
      { name: 'x', type: tensorType(['B', dim]) },
      { name: 'e', type: tensorType(['M', dim]) },
      { name: 't', type: tensorType([]) },
    ],
    output: [
      { name: 'idx', type: tensorType(['K', 2], onnx.TensorProto.DataType.INT64) },
      { name: 'cos', type: tensorType(['K']) },
    ],
  });
}

/**
 * The pairs (i < j) of rows of `data` (row-major, n x dim; any length, they are normalised here) whose cosine
 * similarity is at least `threshold`, ordered by i then j.
 *
 * @param data embeddings, one row per image
 * @param dim values per row
 * @param threshold the lowest cosine kept, in [-1, 1]
 * @param opts.threads onnxruntime intra-op threads (default 2); opts.engine 'js' forces the plain loop
 */
export async function cosinePairs(
  data: Float32Array,
  dim: number,
  threshold: number,
  opts: { threads?: number; engine?: 'onnx' | 'js'; block?: number } = {},
): Promise<{ pairs: CosinePair[]; engine: 'onnxruntime' | 'js' }> {
  const unit = unitRows(data, dim);
  const n = unit.length / dim;
  if (opts.engine === 'js' || n < 2) return { pairs: cosinePairsJs(unit, dim, threshold), engine: 'js' };
  let ort: Awaited<ReturnType<typeof loadOnnxRuntime>>;
  try {
    ort = await loadOnnxRuntime();
  } catch {
    return { pairs: cosinePairsJs(unit, dim, threshold), engine: 'js' };
  }
  const session = await ort.InferenceSession.create(gemmModel(dim), {
    intraOpNumThreads: opts.threads ?? 2,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  const pairs: CosinePair[] = [];
  const t = new ort.Tensor('float32', Float32Array.of(threshold), []);
  // a block of B rows against all N: B x N floats (256 x 1M = 1 GB would be too much: keep B x N near 32M)
  const block = opts.block ?? Math.max(16, Math.min(1024, Math.floor(32_000_000 / n)));
  try {
    for (let i0 = 0; i0 < n; i0 += block) {
      const b = Math.min(block, n - i0);
      const x = new ort.Tensor('float32', unit.subarray(i0 * dim, (i0 + b) * dim), [b, dim]);
      // only the rows from i0 on: the pairs with j < i0 were found by an earlier block (half the work of B x N)
      const e = new ort.Tensor('float32', unit.subarray(i0 * dim), [n - i0, dim]);
      const out = await session.run({ x, e, t });
      const idx = out['idx']!.data as BigInt64Array;
      const cos = out['cos']!.data as Float32Array;
      // NonZero lists places in row-major order: i ascending, then j
      for (let k = 0; k < cos.length; k++) {
        const i = i0 + Number(idx[2 * k]!);
        const j = i0 + Number(idx[2 * k + 1]!);
        if (j > i) pairs.push({ i, j, cos: Math.min(1, cos[k]!) });
      }
      out['idx']!.dispose();
      out['cos']!.dispose();
      x.dispose();
      e.dispose();
    }
  } finally {
    await session.release();
  }
  return { pairs, engine: 'onnxruntime' };
}
