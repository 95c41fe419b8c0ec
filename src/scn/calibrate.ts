/**
 * Post-hoc calibration of a trained head's probabilities: temperature scaling (Guo, Pleiss, Sun & Weinberger, "On
 * Calibration of Modern Neural Networks", ICML 2017, Sec. 4.2). One scalar T > 0 divides every logit before the
 * softmax, q = softmax(z / T); T is the one that minimises the negative log-likelihood of held-out labels. It leaves
 * every row's argmax (so accuracy and predictions) unchanged and only rescales how sure the probabilities are.
 *
 * Why: a head trained to the end on noisy labels is overconfident on the images it trained on (the scn head's
 * probabilities saturate: on the whole FER2013 data 925 proposals had P_proposed - P_given >= 0.999, their review
 * order arbitrary). Fitted on the valid split, T is about 3 for scn and 1.2 for ce (docs/BENCHMARKS.md).
 *
 * Called once after training (src/scn/index.ts), never inside the trainer.
 */

/** A fitted temperature and what it did to the held-out negative log-likelihood. */
export interface Temperature {
  /** The temperature T of q = softmax(z / T). */
  T: number;
  /** Held-out rows it was fitted on. */
  rows: number;
  /** Mean negative log-likelihood of the held-out labels at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
}

/** Search range of log T: T from e^-4 (0.018) to e^5 (148). */
const LOG_T_MIN = -4;
const LOG_T_MAX = 5;
const GOLDEN_STEPS = 60;

/**
 * softmax(z / T) of every row of a row-major [n, C] logit matrix (Guo et al. 2017, Sec. 4.2), computed in float64
 * with the row's maximum subtracted, so large logits neither overflow nor round small probabilities to exactly 0
 * unless they are below float32's smallest value.
 *
 * @param logits row-major [n, C] logits z
 * @param C classes per row
 * @param T temperature, > 0 (1 gives the plain softmax)
 */
export function temperatureScale(logits: ArrayLike<number>, C: number, T: number): Float32Array {
  if (!(T > 0) || !Number.isFinite(T)) throw new RangeError(`temperatureScale: T must be a finite number > 0 (got ${T})`);
  if (logits.length % C !== 0) throw new RangeError(`temperatureScale: ${logits.length} logits are not rows of ${C}`);
  const out = new Float32Array(logits.length);
  const e = new Float64Array(C);
  for (let o = 0; o < logits.length; o += C) {
    let max = -Infinity;
    for (let k = 0; k < C; k++) max = Math.max(max, logits[o + k]!);
    let sum = 0;
    for (let k = 0; k < C; k++) sum += e[k] = Math.exp((logits[o + k]! - max) / T);
    for (let k = 0; k < C; k++) out[o + k] = e[k]! / sum;
  }
  return out;
}

/**
 * Mean negative log-likelihood of `labels[r]` under softmax(z_r / T) over `rows`: -mean_r log q_r[y_r], with
 * log q = (z - max z) / T - log sum exp((z - max z) / T) (the NLL that temperature scaling minimises).
 */
export function temperatureNll(logits: ArrayLike<number>, C: number, labels: ArrayLike<number>, rows: ArrayLike<number>, T: number): number {
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    const o = rows[i]! * C;
    let max = -Infinity;
    for (let k = 0; k < C; k++) max = Math.max(max, logits[o + k]!);
    let sum = 0;
    for (let k = 0; k < C; k++) sum += Math.exp((logits[o + k]! - max) / T);
    total -= (logits[o + labels[rows[i]!]!]! - max) / T - Math.log(sum);
  }
  return total / Math.max(1, rows.length);
}

/**
 * Fits temperature scaling (Guo et al. 2017, Sec. 4.2): the T that minimises the mean negative log-likelihood of
 * `labels` on `rows` (held-out rows: the head never trained on them), by golden-section search over log T in
 * [-4, 5]. The NLL is convex in 1/T, so it has one minimum and the search finds it.
 *
 * @param logits row-major [N, C] logits of every row
 * @param C classes
 * @param labels class index of each row (only `rows` are read; each must be in 0..C-1)
 * @param rows the held-out rows to fit on (at least one)
 */
export function fitTemperature(logits: ArrayLike<number>, C: number, labels: ArrayLike<number>, rows: ArrayLike<number>): Temperature {
  if (rows.length === 0) throw new RangeError('fitTemperature: no rows to fit on');
  for (let i = 0; i < rows.length; i++) {
    const y = labels[rows[i]!];
    if (!(Number.isInteger(y) && y! >= 0 && y! < C)) throw new RangeError(`fitTemperature: row ${rows[i]} has label ${y}, expected 0..${C - 1}`);
  }
  const nll = (logT: number): number => temperatureNll(logits, C, labels, rows, Math.exp(logT));
  const phi = (Math.sqrt(5) - 1) / 2;
  let a = LOG_T_MIN;
  let b = LOG_T_MAX;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = nll(c);
  let fd = nll(d);
  for (let i = 0; i < GOLDEN_STEPS; i++) {
    if (fc <= fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = nll(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = nll(d);
    }
  }
  const T = Math.exp((a + b) / 2);
  return { T, rows: rows.length, nllBefore: nll(0), nllAfter: nll(Math.log(T)) };
}

/** Fewer labelled held-out rows than this and a run is left uncalibrated (a T fitted on a handful of faces is noise). */
export const MIN_CALIBRATION_ROWS = 50;

/**
 * A trained head's probabilities calibrated on its held-out rows: temperature scaling (fitTemperature) fitted on the
 * rows of `held` that have a label, applied to every row. With fewer than MIN_CALIBRATION_ROWS labelled held-out
 * rows the plain softmax is returned and `temperature` is null.
 *
 * @param logits row-major [N, C] logits of every row
 * @param C classes
 * @param labels the labels the run was given, -1 where none
 * @param held held-out rows (the valid split)
 */
export function calibrateOnHeldOut(
  logits: Float32Array,
  C: number,
  labels: ArrayLike<number>,
  held: ArrayLike<number>,
): { probs: Float32Array; temperature: Temperature | null } {
  const rows = Array.from(held).filter((r) => labels[r]! >= 0);
  if (rows.length < MIN_CALIBRATION_ROWS) return { probs: temperatureScale(logits, C, 1), temperature: null };
  const temperature = fitTemperature(logits, C, labels, rows);
  return { probs: temperatureScale(logits, C, temperature.T), temperature };
}
