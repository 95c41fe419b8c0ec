/**
 * The gradient oracle of the tests: the tfjs (autograd) forms of SCN's Eq. 1-3 and the plain cross-entropy, which
 * the closed-form losses and gradients of src/scn/losses.ts (scnObjective, crossEntropyObjective) and the written-out
 * head of src/scn/flathead.ts are checked against. Test-only: training never runs them.
 * Group membership reads detached values (tfjs has no gradient for TopK/GatherNd/StridedSlice, and gather's
 * gradient fails on wasm), so the losses take constant 0/1 masks and stay differentiable.
 */
import { tf } from '../../src/features/backend.js';
import type { RankGroups } from '../../src/scn/losses.js';

/** Eq. 1: alpha = sigmoid(f·Wa + ba), the importance of each sample; f features [N,F], Wa [F,1], ba [1] -> [N,1]. */
export function selfAttentionImportance(
  f: tf.Tensor2D,
  Wa: tf.Tensor2D,
  ba: tf.Tensor1D,
  matMul: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.matMul,
): tf.Tensor2D {
  return tf.sigmoid(tf.add(matMul(f, Wa), ba)) as tf.Tensor2D;
}

/** Eq. 2: L_WCE = -1/N sum_i log softmax(alpha_i * z_i)[y_i]; z = logits [N,C], alpha [N,1], y one-hot [N,C]. */
export function weightedCrossEntropy(logits: tf.Tensor2D, alpha: tf.Tensor2D, yOneHot: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => crossEntropy(tf.mul(alpha, logits) as tf.Tensor2D, yOneHot));
}

/** Plain softmax cross-entropy, mean over the batch (the baseline's loss). */
export function crossEntropy(logits: tf.Tensor2D, yOneHot: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(yOneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar);
}

/** Eq. 3: L_RR = max(0, delta1 - (mean_H - mean_L)), alpha [N,1], groups from rankGroups on alpha's values. */
export function rankRegularization(alpha: tf.Tensor2D, groups: RankGroups, delta1: number): tf.Scalar {
  return tf.tidy(() => {
    const a = tf.reshape(alpha, [-1]);
    const meanH = tf.div(tf.sum(tf.mul(a, tf.tensor1d(groups.high))), groups.nHigh);
    const meanL = tf.div(tf.sum(tf.mul(a, tf.tensor1d(groups.low))), groups.nLow);
    return tf.relu(tf.sub(delta1, tf.sub(meanH, meanL))) as tf.Scalar;
  });
}

/** Total loss: gamma * L_RR + (1 - gamma) * L_WCE (the paper's weighting; gamma = 0.5 is the public code's 1:1, halved). */
export function scnLoss(lRR: tf.Scalar, lWCE: tf.Scalar, gamma: number): tf.Scalar {
  return tf.tidy(() => tf.add(tf.mul(gamma, lRR), tf.mul(1 - gamma, lWCE)) as tf.Scalar);
}
