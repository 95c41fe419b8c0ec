/**
 * Where the head's products run. The head, its forward pass and its written-out backward pass are flathead.ts's;
 * an engine computes exactly those, on one of two kinds of kernels:
 * - 'onnxruntime': onnxruntime-node's native CPU kernels (MLAS: AVX2 / AVX-512 where the CPU has them). The pass
 *   is built as two small ONNX graphs over the flat parameter buffer (forward; then backward from dL/dout), so one
 *   training step is two native calls and no transposes are laid out in JavaScript (Gemm's transA / transB).
 *   About 5x faster than tfjs wasm on the head's 256 x 256 x 256 products.
 * - 'tfjs': flathead.ts's headOutputs / headGradients on the active tfjs backend (the fallback where
 *   onnxruntime-node does not load, and the path the tests check against tfjs autograd).
 * Both compute the same equations; their sums round differently (float32), so runs agree to float tolerance.
 */
import type * as Ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { loadOnnxRuntime } from '../features/onnx-embedder.js';
import { encodeModel, tensorType } from '../features/onnx-model.js';
import { headGradients, headOutputs, type HeadBatch, type HeadLayout } from './flathead.js';

const { onnx } = onnxProto;

export type HeadEngineName = 'onnxruntime' | 'tfjs';
export type HeadEnginePreference = 'auto' | HeadEngineName;

export interface HeadEngine {
  readonly name: HeadEngineName;
  /** Whether the training batches must carry the transposed features XT (HeadBatch.XT). */
  readonly needsTransposed: boolean;
  /** Evaluation-mode outputs of rows X [n, D]: out [n, K] (headOutputs). */
  outputs(theta: Float32Array, L: HeadLayout, X: Float32Array, n: number): Promise<Float32Array>;
  /** Training forward and backward pass; writes dL/dtheta into `grad` (headGradients). */
  gradients(theta: Float32Array, L: HeadLayout, b: HeadBatch, lossGrad: (out: Float32Array) => Float32Array, grad: Float32Array): Promise<void>;
}

/** flathead.ts's passes on the active tfjs backend. */
export const tfjsHeadEngine: HeadEngine = {
  name: 'tfjs',
  needsTransposed: true,
  outputs: (theta, L, X, n) => Promise.resolve(headOutputs(theta, L, X, n)),
  gradients: (theta, L, b, lossGrad, grad) => Promise.resolve(headGradients(theta, L, b, lossGrad, grad)),
};

// ---------------------------------------------------------------- the ONNX graphs

type Node = onnxProto.onnx.INodeProto;

/** Nodes and constants of one graph; values are named by the flathead.ts symbols they hold. */
class Graph {
  readonly nodes: Node[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];

  int64s(name: string, values: number[]): string {
    const raw = new BigInt64Array(values.map(BigInt));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(raw.buffer) });
    return name;
  }

  node(op: string, inputs: string[], output: string, attrs: Record<string, number> = {}): string {
    const attribute = Object.entries(attrs).map(([name, i]) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i }));
    this.nodes.push({ opType: op, input: inputs, output: [output], name: output, attribute });
    return output;
  }

  /** theta[from, from + rows * cols) as a [rows, cols] matrix (cols 0: a vector of `rows`). */
  slice(name: string, from: number, rows: number, cols = 0): string {
    const flat = this.node('Slice', ['theta', this.int64s(`${name}/start`, [from]), this.int64s(`${name}/end`, [from + rows * Math.max(1, cols)])], `${name}/flat`);
    return cols > 0 ? this.node('Reshape', [flat, this.int64s(`${name}/shape`, [rows, cols])], name) : this.node('Identity', [flat], name);
  }

  encode(name: string, inputs: [string, (number | string)[]][], outputs: [string, (number | string)[]][]): Uint8Array {
    const value = ([n, dims]: [string, (number | string)[]]) => ({ name: n, type: tensorType(dims) });
    return encodeModel({ name, node: this.nodes, initializer: this.initializers, input: inputs.map(value), output: outputs.map(value) });
  }

}

/** Evaluation mode: out = relu(X W1 + b1) W2 + b2 (hidden > 0) or X W2 + b2. Inputs theta, X [n, D]; output out. */
function outputsGraph(L: HeadLayout): Uint8Array {
  const g = new Graph();
  let f = 'X';
  if (L.H > 0) f = g.node('Relu', [g.node('Gemm', ['X', g.slice('W1', L.W1, L.D, L.H), g.slice('b1', L.b1, L.H)], 'hpre')], 'h');
  g.node('Gemm', [f, g.slice('W2', L.W2, L.F, L.K), g.slice('b2', L.b2, L.K)], 'out');
  return g.encode('head_outputs', [['theta', [L.size]], ['X', ['n', L.D]]], [['out', ['n', L.K]]]);
}

/**
 * Training forward pass: h = relu(X W1 + b1); f = h * mask (dropout; mask absent: f = h); out = f W2 + b2.
 * Inputs theta, X [n, D] (and mask [n, F]); outputs out [n, K] and f [n, F] (what the backward pass needs).
 */
function forwardGraph(L: HeadLayout, dropout: boolean): Uint8Array {
  const g = new Graph();
  const h = L.H > 0 ? g.node('Relu', [g.node('Gemm', ['X', g.slice('W1', L.W1, L.D, L.H), g.slice('b1', L.b1, L.H)], 'hpre')], 'h') : 'X';
  const f = dropout ? g.node('Mul', [h, 'mask'], 'f') : g.node('Identity', [h], 'f');
  g.node('Gemm', [f, g.slice('W2', L.W2, L.F, L.K), g.slice('b2', L.b2, L.K)], 'out');
  const inputs: [string, (number | string)[]][] = [['theta', [L.size]], ['X', ['n', L.D]]];
  if (dropout) inputs.push(['mask', ['n', L.F]]);
  return g.encode('head_forward', inputs, [['out', ['n', L.K]], ['f', ['n', L.F]]]);
}

/**
 * Backward pass from dout = dL/dout [n, K]: dW2 = f^T dout, db2 = sum_i dout; and with a hidden layer
 * df = dout W2^T, dh = df * mask * [h > 0], dW1 = X^T dh, db1 = sum_i dh. Where the mask keeps an entry, h > 0
 * exactly when f = h * mask > 0, and where it drops one dh is 0 either way, so the gate is read from f.
 * Output: grad, dL/dtheta in the flat layout [dW1 | db1 | dW2 | db2].
 */
function backwardGraph(L: HeadLayout, dropout: boolean): Uint8Array {
  const g = new Graph();
  const axis0 = g.int64s('axis0', [0]);
  const flat = g.int64s('flat', [-1]);
  const parts: string[] = [];
  if (L.H > 0) {
    const df = g.node('Gemm', ['dout', g.slice('W2', L.W2, L.F, L.K)], 'df', { transB: 1 });
    const gate = g.node('Cast', [g.node('Greater', ['f', zeroConstant(g)], 'open')], 'gate', { to: onnx.TensorProto.DataType.FLOAT });
    const gated = g.node('Mul', [df, gate], 'df_gated');
    const dh = dropout ? g.node('Mul', [gated, 'mask'], 'dh') : g.node('Identity', [gated], 'dh');
    parts.push(g.node('Reshape', [g.node('Gemm', ['X', dh], 'dW1', { transA: 1 }), flat], 'dW1/flat'));
    parts.push(g.node('ReduceSum', [dh, axis0], 'db1', { keepdims: 0 }));
  }
  parts.push(g.node('Reshape', [g.node('Gemm', ['f', 'dout'], 'dW2', { transA: 1 }), flat], 'dW2/flat'));
  parts.push(g.node('ReduceSum', ['dout', axis0], 'db2', { keepdims: 0 }));
  g.node('Concat', parts, 'grad', { axis: 0 });
  const inputs: [string, (number | string)[]][] = [['theta', [L.size]], ['f', ['n', L.F]], ['dout', ['n', L.K]]];
  if (L.H > 0) inputs.push(['X', ['n', L.D]]);
  if (L.H > 0 && dropout) inputs.push(['mask', ['n', L.F]]);
  return g.encode('head_backward', inputs, [['grad', [L.size]]]);
}

/** A float scalar 0 (for the ReLU gate f > 0). */
function zeroConstant(g: Graph): string {
  g.initializers.push({ name: 'zero', dims: [], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [0] });
  return 'zero';
}

// ---------------------------------------------------------------- the onnxruntime engine

interface Sessions {
  outputs: Ort.InferenceSession;
  forward: Ort.InferenceSession;
  backward: Ort.InferenceSession;
}

class OnnxHeadEngine implements HeadEngine {
  readonly name = 'onnxruntime' as const;
  readonly needsTransposed = false;
  /** Sessions per head layout and dropout (graphs differ), built on first use. */
  private readonly sessions = new Map<string, Promise<Sessions>>();

  constructor(private readonly ort: typeof Ort) {}

  private session(model: Uint8Array): Promise<Ort.InferenceSession> {
    return this.ort.InferenceSession.create(model, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  }

  private sessionsFor(L: HeadLayout, dropout: boolean): Promise<Sessions> {
    const key = `${L.D}/${L.H}/${L.C}/${L.K}/${dropout ? 1 : 0}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = Promise.all([this.session(outputsGraph(L)), this.session(forwardGraph(L, dropout)), this.session(backwardGraph(L, dropout))]).then(
        ([outputs, forward, backward]) => ({ outputs, forward, backward }),
      );
      this.sessions.set(key, s);
    }
    return s;
  }

  private tensor(data: Float32Array, dims: number[]): Ort.Tensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  /**
   * Runs `session`; its outputs are CPU tensors whose data onnxruntime-node has already copied into JavaScript
   * arrays of their own (no native memory is held), so they are read and fed back as they are.
   */
  private run(session: Ort.InferenceSession, feeds: Record<string, Ort.Tensor>): Promise<Ort.InferenceSession.ReturnType> {
    return session.run(feeds);
  }

  async outputs(theta: Float32Array, L: HeadLayout, X: Float32Array, n: number): Promise<Float32Array> {
    const s = await this.sessionsFor(L, false);
    const r = await this.run(s.outputs, { theta: this.tensor(theta, [L.size]), X: this.tensor(X, [n, L.D]) });
    return r['out']!.data as Float32Array;
  }

  async gradients(theta: Float32Array, L: HeadLayout, b: HeadBatch, lossGrad: (out: Float32Array) => Float32Array, grad: Float32Array): Promise<void> {
    const { n, mask } = b;
    const s = await this.sessionsFor(L, mask !== null);
    const th = this.tensor(theta, [L.size]);
    const X = this.tensor(b.X, [n, L.D]);
    const m = mask ? this.tensor(mask, [n, L.F]) : null;
    const fwd = await this.run(s.forward, { theta: th, X, ...(m ? { mask: m } : {}) });
    const dout = lossGrad(fwd['out']!.data as Float32Array);
    const feeds: Record<string, Ort.Tensor> = { theta: th, f: fwd['f']! as Ort.Tensor, dout: this.tensor(dout, [n, L.K]) };
    if (L.H > 0) {
      feeds['X'] = X;
      if (m) feeds['mask'] = m;
    }
    const bwd = await this.run(s.backward, feeds);
    grad.set(bwd['grad']!.data as Float32Array);
  }
}

let onnxEngine: Promise<HeadEngine> | undefined;

/**
 * The engine to train with: under 'auto' onnxruntime when onnxruntime-node loads, else tfjs; or exactly the one
 * asked for (onnxruntime rejects with the loader's reason when it cannot load).
 */
export async function chooseHeadEngine(pref: HeadEnginePreference = 'auto'): Promise<HeadEngine> {
  if (pref === 'tfjs') return tfjsHeadEngine;
  onnxEngine ??= loadOnnxRuntime().then((ort) => new OnnxHeadEngine(ort));
  try {
    return await onnxEngine;
  } catch (e) {
    if (pref === 'onnxruntime') throw e;
    return tfjsHeadEngine;
  }
}
