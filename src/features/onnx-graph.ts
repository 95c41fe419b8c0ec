import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import onnxProto from 'onnx-proto';
import { FerCleanError } from '../errors.js';
import { manifestPath, type BackboneInfo } from './backbones.js';
import { encodeModel, tensorType } from './onnx-model.js';

/**
 * ONNX graphs of the two face-api backbones, built in JavaScript from the weights the installed
 * @vladmandic/face-api package ships (never downloaded). The layer graph is nets.ts's (face-api 1.7.15's
 * src/faceFeatureExtractor and src/faceRecognitionNet), in NCHW with explicit paddings that equal tfjs's 'same'
 * and 'valid'. Input: `input` [N, 3, S, S] float32, already (rgb - meanRgb) / 255 (onnx-input.ts).
 * Output: `features` [N, dim]. No tfjs here, so worker threads running onnxruntime never load it.
 */

const { onnx } = onnxProto;

/** A weight as tfjs stores it (NHWC filters [kh, kw, in, out], depthwise [kh, kw, in, multiplier]). */
export interface RawWeight {
  shape: number[];
  data: Float32Array;
}
export type RawWeights = Map<string, RawWeight>;

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale: number; min: number };
}

/**
 * Reads a tfjs weights manifest and its .bin shards, dequantising uint8/uint16 entries as tfjs's
 * io.decodeWeights does (q * scale + min).
 */
export function readWeights(manifestFile: string): RawWeights {
  let groups: { paths: string[]; weights: ManifestEntry[] }[];
  try {
    groups = JSON.parse(readFileSync(manifestFile, 'utf8')) as typeof groups;
  } catch (e) {
    throw new FerCleanError(`${manifestFile}: cannot read the weights manifest (${(e as Error).message})`);
  }
  const out: RawWeights = new Map();
  for (const g of groups) {
    const bytes = Buffer.concat(g.paths.map((p) => readFileSync(join(dirname(manifestFile), p))));
    let offset = 0;
    for (const w of g.weights) {
      const size = w.shape.reduce((a, b) => a * b, 1);
      if (w.dtype !== 'float32') throw new FerCleanError(`${manifestFile}: weight '${w.name}' has dtype ${w.dtype}, expected float32`);
      let data: Float32Array;
      const q = w.quantization;
      if (q && (q.dtype === 'uint8' || q.dtype === 'uint16')) {
        const wide = q.dtype === 'uint16';
        const raw = wide
          ? new Uint16Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 2 * size))
          : bytes.subarray(offset, offset + size);
        data = Float32Array.from(raw, (v) => v * q.scale + q.min);
        offset += size * (wide ? 2 : 1);
      } else if (!q) {
        data = new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 4 * size));
        offset += 4 * size;
      } else {
        throw new FerCleanError(`${manifestFile}: weight '${w.name}' is quantised as ${q.dtype}, which is not supported`);
      }
      if (data.length !== size) throw new FerCleanError(`${manifestFile}: the weights file ends inside '${w.name}'`);
      out.set(w.name, { shape: w.shape, data });
    }
  }
  return out;
}

function take(w: RawWeights, name: string, rank: number): RawWeight {
  const t = w.get(name);
  if (!t || t.shape.length !== rank) throw new FerCleanError(`backbone weights: '${name}' missing or not of rank ${rank}`);
  return t;
}

/** tfjs filter [kh, kw, in, out] -> ONNX Conv weight [out, in, kh, kw]. */
function hwioToOihw(f: RawWeight): RawWeight {
  const [kh, kw, ci, co] = f.shape as [number, number, number, number];
  const out = new Float32Array(f.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = f.data[((y * kw + x) * ci + i) * co + o]!;
  return { shape: [co, ci, kh, kw], data: out };
}

/** tfjs depthwise filter [kh, kw, c, 1] -> ONNX grouped Conv weight [c, 1, kh, kw]. */
function depthwiseToOihw(f: RawWeight): RawWeight {
  const [kh, kw, c, m] = f.shape as [number, number, number, number];
  if (m !== 1) throw new FerCleanError(`depthwise filter with channel multiplier ${m} is not supported`);
  return hwioToOihw({ shape: [kh, kw, 1, c], data: f.data });
}

/** tfjs 'same' padding for one spatial axis: [begin, end] (the odd pixel goes at the end), and the output size. */
function samePad(size: number, k: number, stride: number): { pads: [number, number]; out: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return { pads: [Math.floor(total / 2), total - Math.floor(total / 2)], out };
}

/** A tensor flowing through the graph: its name, channels and (square) spatial size. */
interface Value {
  name: string;
  c: number;
  size: number;
}

/** Accumulates nodes and initializers of one graph. */
class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private n = 0;

  private fresh(op: string): string {
    return `${op.toLowerCase()}_${this.n++}`;
  }

  constant(name: string, w: RawWeight): string {
    const data = w.data;
    this.initializers.push({
      name,
      dims: w.shape,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  int64s(name: string, values: number[]): string {
    const raw = new BigInt64Array(values.map(BigInt));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(raw.buffer) });
    return name;
  }

  node(op: string, inputs: string[], attrs: Record<string, number | number[]> = {}, output = this.fresh(op)): string {
    const attribute = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v)
        ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: v }
        : { name, type: onnx.AttributeProto.AttributeType.INT, i: v },
    );
    this.nodes.push({ opType: op, input: inputs, output: [output], name: output, attribute });
    return output;
  }

  /**
   * Conv with tfjs padding semantics. `weight` is already OIHW; `group` = channels for depthwise. Relu fused by
   * onnxruntime when `relu`.
   */
  conv(x: Value, name: string, weight: RawWeight, bias: RawWeight | null, opts: { stride: number; pad: 'same' | 'valid'; group?: number; relu?: boolean }): Value {
    const [co, , k] = weight.shape as [number, number, number, number];
    let pads: [number, number] = [0, 0];
    let out = Math.floor((x.size - k) / opts.stride) + 1;
    if (opts.pad === 'same') ({ pads, out } = samePad(x.size, k, opts.stride));
    const inputs = [x.name, this.constant(`${name}/weight`, weight)];
    if (bias) inputs.push(this.constant(`${name}/bias`, bias));
    const attrs = { kernel_shape: [k, k], strides: [opts.stride, opts.stride], pads: [pads[0], pads[0], pads[1], pads[1]], group: opts.group ?? 1 };
    let y = this.node('Conv', inputs, attrs, name);
    if (opts.relu) y = this.node('Relu', [y]);
    return { name: y, c: co, size: out };
  }

  add(a: Value, b: Value): Value {
    return { ...a, name: this.node('Add', [a.name, b.name]) };
  }

  relu(x: Value): Value {
    return { ...x, name: this.node('Relu', [x.name]) };
  }

  encode(inputSize: number, output: string, dim: number, docString: string): Uint8Array {
    return encodeModel(
      {
        name: 'backbone',
        node: this.nodes,
        initializer: this.initializers,
        input: [{ name: 'input', type: tensorType(['N', 3, inputSize, inputSize]) }],
        output: [{ name: output, type: tensorType(['N', dim]) }],
      },
      docString,
    );
  }
}

// ---------------------------------------------------------------- faceExpressionNet feature extractor

/** depthwise 3x3 (stride), then pointwise 1x1 + bias (nets.ts separable). */
function separable(g: GraphBuilder, w: RawWeights, x: Value, prefix: string, stride: number, relu: boolean): Value {
  const dw = g.conv(x, `${prefix}/depthwise`, depthwiseToOihw(take(w, `${prefix}/depthwise_filter`, 4)), null, { stride, pad: 'same', group: x.c });
  return g.conv(dw, `${prefix}/pointwise`, hwioToOihw(take(w, `${prefix}/pointwise_filter`, 4)), take(w, `${prefix}/bias`, 1), { stride: 1, pad: 'same', relu });
}

/** face-api denseBlock4: out_k = conv_k(relu(out_1 + ... + out_{k-1})), result relu(out_1 + ... + out_4). */
function denseBlock4(g: GraphBuilder, w: RawWeights, x: Value, name: string, first: boolean): Value {
  const out1 = first
    ? g.conv(x, `${name}/conv0`, hwioToOihw(take(w, `${name}/conv0/filters`, 4)), take(w, `${name}/conv0/bias`, 1), { stride: 2, pad: 'same', relu: true })
    : separable(g, w, x, `${name}/conv0`, 2, true);
  const out2 = separable(g, w, out1, `${name}/conv1`, 1, false);
  const sum2 = g.add(out1, out2);
  const out3 = separable(g, w, g.relu(sum2), `${name}/conv2`, 1, false);
  const sum3 = g.add(sum2, out3);
  const out4 = separable(g, w, g.relu(sum3), `${name}/conv3`, 1, false);
  return g.relu(g.add(sum3, out4));
}

function faceExpressionGraph(info: BackboneInfo, w: RawWeights): Uint8Array {
  const g = new GraphBuilder();
  let x: Value = { name: 'input', c: 3, size: info.inputSize };
  ['dense0', 'dense1', 'dense2', 'dense3'].forEach((name, i) => (x = denseBlock4(g, w, x, name, i === 0)));
  // 7x7x256 -> mean over the 7x7 grid -> 256
  const pooled = g.node('GlobalAveragePool', [x.name]);
  g.node('Flatten', [pooled], { axis: 1 }, 'features');
  return g.encode(info.inputSize, 'features', info.dim, 'faceExpressionNet feature extractor (face-api 1.7.15 weights)');
}

// ---------------------------------------------------------------- faceRecognitionNet (ResNet-34-like)

/** conv + bias then scale (x * s + b) folded into one conv: filters * s, bias * s + b (as nets.ts). */
function foldConvScale(w: RawWeights, prefix: string): { weight: RawWeight; bias: RawWeight } {
  const f = take(w, `${prefix}/conv/filters`, 4);
  const bias = take(w, `${prefix}/conv/bias`, 1);
  const s = take(w, `${prefix}/scale/weights`, 1);
  const b = take(w, `${prefix}/scale/biases`, 1);
  const co = f.shape[3]!;
  const scaled = new Float32Array(f.data.length);
  for (let i = 0; i < f.data.length; i++) scaled[i] = Math.fround(f.data[i]! * s.data[i % co]!);
  const folded = new Float32Array(co);
  for (let o = 0; o < co; o++) folded[o] = Math.fround(Math.fround(bias.data[o]! * s.data[o]!) + b.data[o]!);
  return { weight: hwioToOihw({ shape: f.shape, data: scaled }), bias: { shape: [co], data: folded } };
}

function convScale(g: GraphBuilder, w: RawWeights, x: Value, prefix: string, stride: number, pad: 'same' | 'valid', relu: boolean): Value {
  const { weight, bias } = foldConvScale(w, prefix);
  return g.conv(x, prefix, weight, bias, { stride, pad, relu });
}

function residual(g: GraphBuilder, w: RawWeights, x: Value, name: string): Value {
  const out = convScale(g, w, convScale(g, w, x, `${name}/conv1`, 1, 'same', true), `${name}/conv2`, 1, 'same', false);
  return g.relu(g.add(out, x));
}

/** face-api residualDown: strided valid conv path + 2x2 average-pooled shortcut, zero-padded (at the end) to match. */
function residualDown(g: GraphBuilder, w: RawWeights, x: Value, name: string): Value {
  let out = convScale(g, w, convScale(g, w, x, `${name}/conv1`, 2, 'valid', true), `${name}/conv2`, 1, 'same', false);
  let pooled: Value = { name: g.node('AveragePool', [x.name], { kernel_shape: [2, 2], strides: [2, 2] }), c: x.c, size: Math.floor((x.size - 2) / 2) + 1 };
  if (pooled.size !== out.size) {
    const d = pooled.size - out.size;
    out = { ...out, size: pooled.size, name: g.node('Pad', [out.name, g.int64s(`${name}/pad_hw`, [0, 0, 0, 0, 0, 0, d, d])]) };
  }
  if (pooled.c !== out.c) {
    const d = out.c - pooled.c;
    pooled = { ...pooled, c: out.c, name: g.node('Pad', [pooled.name, g.int64s(`${name}/pad_c`, [0, 0, 0, 0, 0, d, 0, 0])]) };
  }
  return g.relu(g.add(pooled, out));
}

function faceRecognitionGraph(info: BackboneInfo, w: RawWeights): Uint8Array {
  const g = new GraphBuilder();
  let x = convScale(g, w, { name: 'input', c: 3, size: info.inputSize }, 'conv32_down', 2, 'valid', true);
  x = { ...x, size: Math.floor((x.size - 3) / 2) + 1, name: g.node('MaxPool', [x.name], { kernel_shape: [3, 3], strides: [2, 2] }) };
  const stages: [kind: 'res' | 'down', name: string][] = [
    ['res', 'conv32_1'], ['res', 'conv32_2'], ['res', 'conv32_3'],
    ['down', 'conv64_down'], ['res', 'conv64_1'], ['res', 'conv64_2'], ['res', 'conv64_3'],
    ['down', 'conv128_down'], ['res', 'conv128_1'], ['res', 'conv128_2'],
    ['down', 'conv256_down'], ['res', 'conv256_1'], ['res', 'conv256_2'],
    ['down', 'conv256_down_out'],
  ];
  for (const [kind, name] of stages) x = kind === 'res' ? residual(g, w, x, name) : residualDown(g, w, x, name);
  const pooled = g.node('GlobalAveragePool', [x.name]);
  const flat = g.node('Flatten', [pooled], { axis: 1 });
  g.node('MatMul', [flat, g.constant('fc', take(w, 'fc', 2))], {}, 'features');
  return g.encode(info.inputSize, 'features', info.dim, 'faceRecognitionNet (face-api 1.7.15 weights)');
}

/** Backbones that have an ONNX graph. */
export const ONNX_BACKBONES: readonly string[] = ['faceexpr', 'facerec'];

/** The serialised ONNX model of a backbone, from the installed package's weights (a few ms; built per process). */
export function buildOnnxModel(info: BackboneInfo, weights: RawWeights = readWeights(manifestPath(info))): Uint8Array {
  if (info.id === 'faceexpr') return faceExpressionGraph(info, weights);
  if (info.id === 'facerec') return faceRecognitionGraph(info, weights);
  throw new FerCleanError(`no ONNX graph for backbone '${info.id}'`);
}
