import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FerCleanError } from '../errors.js';
import { tf } from './backend.js';
import { manifestPath, MEAN_RGB, type BackboneInfo } from './backbones.js';

/**
 * The two face-api networks as plain tfjs functions over weights read from the package's model/ folder.
 * The layer graph follows face-api 1.7.15's src/faceFeatureExtractor and src/faceRecognitionNet exactly;
 * bias, scale layers and ReLUs are folded into fused convolutions where that is the same arithmetic.
 */

export { MEAN_RGB } from './backbones.js';

type Weights = tf.NamedTensorMap;

interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** Reads a tfjs weights manifest and its .bin shards from disk and dequantises them into tensors. */
export function loadWeightMap(manifestFile: string): Weights {
  let groups: ManifestGroup[];
  try {
    groups = JSON.parse(readFileSync(manifestFile, 'utf8')) as ManifestGroup[];
  } catch (e) {
    throw new FerCleanError(`${manifestFile}: cannot read the weights manifest (${(e as Error).message})`);
  }
  const out: Weights = {};
  for (const g of groups) {
    const shards = g.paths.map((p) => readFileSync(join(dirname(manifestFile), p)));
    const bytes = Buffer.concat(shards);
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    Object.assign(out, tf.io.decodeWeights(buf, g.weights));
  }
  return out;
}

function take<R extends tf.Rank>(w: Weights, name: string, rank: number): tf.Tensor<R> {
  const t = w[name];
  if (!t || t.rank !== rank) throw new FerCleanError(`backbone weights: '${name}' missing or not of rank ${rank}`);
  return t as tf.Tensor<R>;
}

/** (x - meanRgb) / 255 on a [N, H, W, 3] uint8/int32 or float batch. */
function normalize(x: tf.Tensor4D): tf.Tensor4D {
  return tf.div(tf.sub(tf.cast(x, 'float32'), tf.tensor1d([...MEAN_RGB])), 255);
}

/** A frozen network: batch of RGB images [N, S, S, 3] (0..255) -> features [N, dim]. Call inside tf.tidy. */
export interface Net {
  info: BackboneInfo;
  features(rgb: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

// ---------------------------------------------------------------- faceExpressionNet feature extractor

interface SeparableConv {
  depthwise: tf.Tensor4D;
  pointwise: tf.Tensor4D;
  bias: tf.Tensor1D;
}
interface DenseBlock {
  /** conv0 is a plain 3x3 conv in the first block, separable elsewhere. */
  conv0: SeparableConv | { filters: tf.Tensor4D; bias: tf.Tensor1D };
  conv1: SeparableConv;
  conv2: SeparableConv;
  conv3: SeparableConv;
}

function separable(x: tf.Tensor4D, p: SeparableConv, stride: 1 | 2, relu = false): tf.Tensor4D {
  const dw = tf.depthwiseConv2d(x, p.depthwise, stride, 'same');
  return tf.fused.conv2d({ x: dw, filter: p.pointwise, strides: 1, pad: 'same', bias: p.bias, activation: relu ? 'relu' : 'linear' });
}

/** face-api denseBlock4: out_k = conv_k(relu(out_1 + ... + out_{k-1})), result relu(out_1 + ... + out_4). */
function denseBlock4(x: tf.Tensor4D, p: DenseBlock): tf.Tensor4D {
  const out1 =
    'filters' in p.conv0
      ? tf.fused.conv2d({ x, filter: p.conv0.filters, strides: 2, pad: 'same', bias: p.conv0.bias, activation: 'relu' })
      : separable(x, p.conv0, 2, true);
  const out2 = separable(out1, p.conv1, 1);
  const sum2 = tf.add<tf.Tensor4D>(out1, out2);
  const out3 = separable(tf.relu(sum2), p.conv2, 1);
  const sum3 = tf.add<tf.Tensor4D>(sum2, out3);
  const out4 = separable(tf.relu(sum3), p.conv3, 1);
  return tf.relu(tf.add<tf.Tensor4D>(sum3, out4));
}

export function faceExpressionFeatures(info: BackboneInfo, w: Weights = loadWeightMap(manifestPath(info))): Net & { logits(features: tf.Tensor2D): tf.Tensor2D } {
  const sep = (prefix: string): SeparableConv => ({
    depthwise: take(w, `${prefix}/depthwise_filter`, 4),
    pointwise: take(w, `${prefix}/pointwise_filter`, 4),
    bias: take(w, `${prefix}/bias`, 1),
  });
  const block = (name: string, first: boolean): DenseBlock => ({
    conv0: first ? { filters: take(w, `${name}/conv0/filters`, 4), bias: take(w, `${name}/conv0/bias`, 1) } : sep(`${name}/conv0`),
    conv1: sep(`${name}/conv1`),
    conv2: sep(`${name}/conv2`),
    conv3: sep(`${name}/conv3`),
  });
  const blocks = [block('dense0', true), block('dense1', false), block('dense2', false), block('dense3', false)];
  const fcW = take<tf.Rank.R2>(w, 'fc/weights', 2);
  const fcB = take<tf.Rank.R1>(w, 'fc/bias', 1);
  return {
    info,
    features(rgb) {
      let x = normalize(rgb);
      for (const b of blocks) x = denseBlock4(x, b);
      // 7x7x256 -> average pool 7x7 (face-api: avgPool [7,7] stride 2 valid) -> 256
      return tf.reshape(tf.mean(x, [1, 2]), [-1, info.dim]) as tf.Tensor2D;
    },
    /** The package's own 7-way expression head (neutral, happy, sad, angry, fearful, disgusted, surprised). */
    logits(features) {
      return tf.add(tf.matMul(features, fcW), fcB);
    },
    dispose() {
      for (const t of Object.values(w)) t.dispose();
    },
  };
}

// ---------------------------------------------------------------- faceRecognitionNet (ResNet-34-like)

interface ConvLayer {
  filters: tf.Tensor4D;
  bias: tf.Tensor1D;
}
interface Residual {
  conv1: ConvLayer;
  conv2: ConvLayer;
}

/** conv + bias then scale (x * s + b) folded into one conv: filters * s, bias * s + b (same arithmetic). */
function foldConvScale(w: Weights, prefix: string): ConvLayer {
  const filters = take<tf.Rank.R4>(w, `${prefix}/conv/filters`, 4);
  const bias = take<tf.Rank.R1>(w, `${prefix}/conv/bias`, 1);
  const s = take<tf.Rank.R1>(w, `${prefix}/scale/weights`, 1);
  const b = take<tf.Rank.R1>(w, `${prefix}/scale/biases`, 1);
  return tf.tidy(() => ({ filters: tf.mul<tf.Tensor4D>(filters, s), bias: tf.add<tf.Tensor1D>(tf.mul(bias, s), b) }));
}

function conv(x: tf.Tensor4D, p: ConvLayer, stride: 1 | 2, pad: 'same' | 'valid', relu: boolean): tf.Tensor4D {
  return tf.fused.conv2d({ x, filter: p.filters, strides: stride, pad, bias: p.bias, activation: relu ? 'relu' : 'linear' });
}

function residual(x: tf.Tensor4D, p: Residual): tf.Tensor4D {
  const out = conv(conv(x, p.conv1, 1, 'same', true), p.conv2, 1, 'same', false);
  return tf.relu(tf.add<tf.Tensor4D>(out, x));
}

/** face-api residualDown: strided valid conv path + 2x2 average-pooled shortcut, zero-padded to match. */
function residualDown(x: tf.Tensor4D, p: Residual): tf.Tensor4D {
  let out = conv(conv(x, p.conv1, 2, 'valid', true), p.conv2, 1, 'same', false);
  let pooled = tf.avgPool(x, 2, 2, 'valid') as tf.Tensor4D;
  if (pooled.shape[1] !== out.shape[1] || pooled.shape[2] !== out.shape[2]) {
    out = tf.pad(out, [[0, 0], [0, pooled.shape[1] - out.shape[1]], [0, pooled.shape[2] - out.shape[2]], [0, 0]]);
  }
  if (pooled.shape[3] !== out.shape[3]) pooled = tf.pad(pooled, [[0, 0], [0, 0], [0, 0], [0, out.shape[3] - pooled.shape[3]]]);
  return tf.relu(tf.add<tf.Tensor4D>(pooled, out));
}

export function faceRecognitionFeatures(info: BackboneInfo, w: Weights = loadWeightMap(manifestPath(info))): Net {
  const res = (name: string): Residual => ({ conv1: foldConvScale(w, `${name}/conv1`), conv2: foldConvScale(w, `${name}/conv2`) });
  const stem = foldConvScale(w, 'conv32_down');
  const stages: [kind: 'res' | 'down', p: Residual][] = [
    ['res', res('conv32_1')], ['res', res('conv32_2')], ['res', res('conv32_3')],
    ['down', res('conv64_down')], ['res', res('conv64_1')], ['res', res('conv64_2')], ['res', res('conv64_3')],
    ['down', res('conv128_down')], ['res', res('conv128_1')], ['res', res('conv128_2')],
    ['down', res('conv256_down')], ['res', res('conv256_1')], ['res', res('conv256_2')],
    ['down', res('conv256_down_out')],
  ];
  const fc = take<tf.Rank.R2>(w, 'fc', 2);
  for (const t of Object.values(w)) if (t !== fc) t.dispose(); // folded copies replace the raw conv/scale tensors
  const folded = [stem, ...stages.flatMap(([, p]) => [p.conv1, p.conv2])];
  return {
    info,
    features(rgb) {
      let x = conv(normalize(rgb), stem, 2, 'valid', true);
      x = tf.maxPool(x, 3, 2, 'valid');
      for (const [kind, p] of stages) x = kind === 'res' ? residual(x, p) : residualDown(x, p);
      return tf.matMul(tf.mean(x, [1, 2]) as tf.Tensor2D, fc);
    },
    dispose() {
      fc.dispose();
      for (const c of folded) {
        c.filters.dispose();
        c.bias.dispose();
      }
    },
  };
}

/** Builds a backbone's network on the active tfjs backend. */
export function loadNet(info: BackboneInfo): Net {
  if (info.id === 'faceexpr') return faceExpressionFeatures(info);
  if (info.id === 'facerec') return faceRecognitionFeatures(info);
  throw new FerCleanError(`no network for backbone '${info.id}'`);
}
