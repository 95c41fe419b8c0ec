/**
 * The gradient oracle of the tests: the head on frozen backbone embeddings as tfjs variables: x -> [hidden layer
 * (ReLU) ->] dropout -> classifier logits z, and for SCN the importance branch alpha = sigmoid(FC(f)) (Eq. 1) on the
 * same features f. This is the autograd definition of the head: training runs src/scn/flathead.ts's written-out
 * forward and backward passes, which the tests check against this model's tf.variableGrads. Its weights are
 * flathead's initHead (the one Glorot init), laid out as variables.
 * Dense layers use a matMul whose gradient transposes explicitly: on the wasm backend a matMul with a transposed
 * operand is 13-20x slower (../shared/notes/tfjs-in-node.md).
 */
import { tf } from '../../src/features/backend.js';
import { headLayout, initHead, type HeadShape } from '../../src/scn/flathead.js';
import type { Rng } from '../../src/scn/prng.js';
import { selfAttentionImportance } from './losses-tf.js';

export type { HeadShape } from '../../src/scn/flathead.js';

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
    const L = headLayout(shape);
    const theta = initHead(shape, rng);
    const matrix = (rows: number, cols: number, at: (i: number, j: number) => number): tf.Variable => {
      const v = new Float32Array(rows * cols);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) v[i * cols + j] = theta[at(i, j)]!;
      return tf.variable(tf.tensor2d(v, [rows, cols]));
    };
    this.W1 = L.H > 0 ? matrix(L.D, L.H, (i, j) => L.W1 + i * L.H + j) : null;
    this.b1 = L.H > 0 ? tf.variable(tf.zeros([L.H])) : null;
    this.Wc = matrix(L.F, L.C, (i, j) => L.W2 + i * L.K + j);
    this.bc = tf.variable(tf.zeros([L.C]));
    this.Wa = shape.attention ? matrix(L.F, 1, (i) => L.W2 + i * L.K + L.C) : null;
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
