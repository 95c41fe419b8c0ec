/**
 * The head on frozen backbone embeddings as tfjs variables: x -> [hidden layer (ReLU) ->] dropout -> classifier
 * logits z, and for SCN the importance branch alpha = sigmoid(FC(f)) (Eq. 1) on the same features f.
 * This is the autograd definition of the head: training runs flathead.ts's written-out forward and backward
 * passes, which the tests check against this model's tf.variableGrads.
 * Dense layers use a matMul whose gradient transposes explicitly: on the wasm backend a matMul with a transposed
 * operand is 13-20x slower (../shared/notes/tfjs-in-node.md).
 */
import { tf } from '../features/backend.js';
import { selfAttentionImportance } from './losses.js';
import type { Rng } from './prng.js';

/** x·w with gradients dx = dy·transpose(w), dw = transpose(x)·dy computed from explicit transposes. */
export const denseMatMul = tf.customGrad(((x: tf.Tensor2D, w: tf.Tensor2D, save: tf.GradSaveFunc) => {
  save([x, w]);
  return {
    value: tf.matMul(x, w),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy, tf.transpose(ws)), tf.matMul(tf.transpose(xs), dy)];
    },
  };
}) as never) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

export interface HeadShape {
  inputDim: number;
  /** Units of the hidden layer; 0 for a linear head on the embeddings. */
  hidden: number;
  classes: number;
  /** Whether the head has SCN's importance branch. */
  attention: boolean;
}

/** Glorot-uniform weights drawn from the run's generator (reproducible on any backend). */
function glorot(rows: number, cols: number, rng: Rng): tf.Variable {
  const limit = Math.sqrt(6 / (rows + cols));
  const v = new Float32Array(rows * cols);
  for (let i = 0; i < v.length; i++) v[i] = (rng.next() * 2 - 1) * limit;
  return tf.variable(tf.tensor2d(v, [rows, cols]));
}

export class Head {
  readonly W1: tf.Variable | null;
  readonly b1: tf.Variable | null;
  readonly Wc: tf.Variable;
  readonly bc: tf.Variable;
  readonly Wa: tf.Variable | null;
  readonly ba: tf.Variable | null;

  constructor(
    readonly shape: HeadShape,
    rng: Rng,
  ) {
    const { inputDim, hidden, classes } = shape;
    const f = hidden > 0 ? hidden : inputDim;
    this.W1 = hidden > 0 ? glorot(inputDim, hidden, rng) : null;
    this.b1 = hidden > 0 ? tf.variable(tf.zeros([hidden])) : null;
    this.Wc = glorot(f, classes, rng);
    this.bc = tf.variable(tf.zeros([classes]));
    this.Wa = shape.attention ? glorot(f, 1, rng) : null;
    this.ba = shape.attention ? tf.variable(tf.zeros([1])) : null;
  }

  /** Width of the features f that the classifier and the importance branch see. */
  get featureDim(): number {
    return this.shape.hidden > 0 ? this.shape.hidden : this.shape.inputDim;
  }

  get variables(): tf.Variable[] {
    return [this.W1, this.b1, this.Wc, this.bc, this.Wa, this.ba].filter((v): v is tf.Variable => v !== null);
  }

  /**
   * Forward pass. `dropMask` ([N, featureDim], already scaled by 1/(1-p)) applies dropout to f during training.
   * Returns the classifier logits z and, with attention, alpha = selfAttentionImportance(f) (Eq. 1), shape [N,1].
   */
  forward(x: tf.Tensor2D, dropMask?: tf.Tensor2D): { logits: tf.Tensor2D; alpha: tf.Tensor2D | null } {
    let f: tf.Tensor2D = x;
    if (this.W1 && this.b1) f = tf.relu(tf.add(denseMatMul(x, this.W1 as tf.Tensor2D), this.b1)) as tf.Tensor2D;
    if (dropMask) f = tf.mul(f, dropMask) as tf.Tensor2D;
    const logits = tf.add(denseMatMul(f, this.Wc as tf.Tensor2D), this.bc) as tf.Tensor2D;
    const alpha = this.Wa && this.ba ? selfAttentionImportance(f, this.Wa as tf.Tensor2D, this.ba as tf.Tensor1D, denseMatMul) : null;
    return { logits, alpha };
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}
