/**
 * Estimated correctness of a run's proposals: the probability that a reviewer accepts each one.
 *
 * 1. Prior (before any decision), from the run alone: a logistic calibration of the run's probabilities fitted on
 *    its held-out validation split (images it never trained on), see fitPrior.
 * 2. Refit on decisions: a penalised logistic regression of "accepted" with the prior's logit as offset, on
 *    features of each proposal (see FEATURES and EstimateModel.fit). With no decision the weights are 0 and the
 *    estimate is the prior; the ridge penalty keeps class pairs with few decisions near the prior.
 *
 * Pure: plain arrays in, numbers out; src/review/estimates.ts reads them from the store.
 */
import { argmax } from '../scn/argmax.js';
import { fitLogistic, linear, logit, sigmoid, type SparseRow } from './logistic.js';
import { Rng } from '../scn/prng.js';

/** What the model sees of one proposal (class indices in taxonomy order). */
export interface ProposalFeatures {
  given: number;
  proposed: number;
  /** P(proposed) - P(given), as stored. */
  margin: number;
  /** SCN importance (final alpha); null for methods without one. */
  importance: number | null;
  pProposed: number;
  pGiven: number;
}

/** A held-out (validation-split) image the prior is calibrated on. */
export interface HeldOutRow {
  /** The run's label for it (class index). */
  given: number;
  /** Reference label (class index), -1 when there is none. */
  reference: number;
  probs: ArrayLike<number>;
}

export type PriorSource = 'valid-reference' | 'valid-given' | 'raw';

/**
 * The prior: estimate = sigmoid(a + b * logit(P(proposed)) + c * logit(P(given))).
 * - 'valid-reference': fitted on the validation images whose top class differs from their label (the proposals the
 *   run would make there), outcome = top class equals the reference label (what a reviewer whose truth is the
 *   reference would accept); needs >= PRIOR_MIN_ROWS such images with a reference, both outcomes present.
 * - 'valid-given': otherwise, fitted on every validation image, outcome = top class equals its label, c = 0
 *   (calibration of the top probability against the dataset's own labels, which are noisy: an underestimate).
 * - 'raw': no validation split: the run's P(proposed) itself (a = c = 0, b = 1).
 */
export interface Prior {
  source: PriorSource;
  a: number;
  b: number;
  c: number;
  /** Validation images it was fitted on. */
  rows: number;
}

export const PRIOR_MIN_ROWS = 50;

/** Fits the prior on the run's validation rows (see Prior). */
export function fitPrior(rows: HeldOutRow[]): Prior {
  const disagree = rows.filter((r) => r.reference >= 0 && argmax(r.probs, 0, r.probs.length) !== r.given);
  const pos = disagree.filter((r) => argmax(r.probs, 0, r.probs.length) === r.reference).length;
  if (disagree.length >= PRIOR_MIN_ROWS && pos >= 5 && disagree.length - pos >= 5) {
    const x: SparseRow[] = disagree.map((r) => {
      const t = argmax(r.probs, 0, r.probs.length);
      return { idx: [0, 1, 2], val: [1, logit(r.probs[t]!), logit(r.probs[r.given]!)] };
    });
    const y = disagree.map((r) => (argmax(r.probs, 0, r.probs.length) === r.reference ? 1 : 0));
    const f = fitLogistic({ dim: 3, rows: x, y, l2: 0.01 });
    return { source: 'valid-reference', a: f.w[0]!, b: f.w[1]!, c: f.w[2]!, rows: disagree.length };
  }
  if (rows.length >= PRIOR_MIN_ROWS) {
    const x: SparseRow[] = rows.map((r) => ({ idx: [0, 1], val: [1, logit(r.probs[argmax(r.probs, 0, r.probs.length)]!)] }));
    const y = rows.map((r) => (argmax(r.probs, 0, r.probs.length) === r.given ? 1 : 0));
    const f = fitLogistic({ dim: 2, rows: x, y, l2: 0.01 });
    return { source: 'valid-given', a: f.w[0]!, b: f.w[1]!, c: 0, rows: rows.length };
  }
  return { source: 'raw', a: 0, b: 1, c: 0, rows: 0 };
}

export const priorLogit = (prior: Prior, p: ProposalFeatures): number =>
  prior.a + prior.b * logit(p.pProposed) + prior.c * logit(p.pGiven);

/** Numeric features of the refit, standardised over the run's proposals; then one indicator per (given, proposed). */
export const FEATURES = ['intercept', 'prior_logit', 'margin', 'importance', 'logit_p_proposed', 'logit_p_given'] as const;
const NUMERIC = FEATURES.length;

/** Ridge penalties: numeric features, and the (given, proposed) indicators (stronger: pairs can have few decisions). */
export const L2_NUMERIC = 1;
export const L2_PAIR = 3;

/** One decision the model learns from: the proposal's index and whether it was accepted. */
export interface Outcome {
  index: number;
  accepted: boolean;
}

/**
 * The estimate for every proposal of a run. Build it once per run (features, prior); fit() on the decisions so far
 * whenever they change (milliseconds for thousands of decisions), then read estimate(i).
 */
export class EstimateModel {
  readonly n: number;
  readonly dim: number;
  private readonly rows: SparseRow[];
  private readonly offset: Float64Array;
  private readonly est: Float64Array;
  private w: Float64Array;
  /** Decisions the current fit used. */
  fittedOn = 0;

  constructor(
    readonly proposals: ProposalFeatures[],
    readonly prior: Prior,
    readonly classes: number,
  ) {
    this.n = proposals.length;
    this.dim = NUMERIC + classes * classes;
    this.offset = Float64Array.from(proposals, (p) => priorLogit(prior, p));
    const raw = proposals.map((p, i) => [
      this.offset[i]!,
      p.margin,
      p.importance ?? 0,
      logit(p.pProposed),
      logit(p.pGiven),
    ]);
    const cols = raw[0]?.length ?? 0;
    const mean = new Array<number>(cols).fill(0);
    const sd = new Array<number>(cols).fill(0);
    for (const r of raw) r.forEach((v, k) => (mean[k]! += v / raw.length));
    for (const r of raw) r.forEach((v, k) => (sd[k]! += (v - mean[k]!) ** 2 / raw.length));
    this.rows = raw.map((r, i) => {
      const p = proposals[i]!;
      const idx = [0];
      const val = [1];
      r.forEach((v, k) => {
        const s = Math.sqrt(sd[k]!);
        if (s > 1e-9) {
          idx.push(1 + k);
          val.push((v - mean[k]!) / s);
        }
      });
      idx.push(NUMERIC + p.given * classes + p.proposed);
      val.push(1);
      return { idx, val };
    });
    this.w = new Float64Array(this.dim);
    this.est = Float64Array.from(this.offset, sigmoid);
  }

  /** Refits on these decisions (all annotators'); with none, back to the prior. */
  fit(outcomes: Outcome[]): void {
    if (outcomes.length === 0) {
      this.w = new Float64Array(this.dim);
    } else {
      const l2 = new Float64Array(this.dim);
      for (let j = 0; j < this.dim; j++) l2[j] = j < NUMERIC ? L2_NUMERIC : L2_PAIR;
      const f = fitLogistic({
        dim: this.dim,
        rows: outcomes.map((o) => this.rows[o.index]!),
        y: outcomes.map((o) => (o.accepted ? 1 : 0)),
        offset: outcomes.map((o) => this.offset[o.index]!),
        l2,
      });
      this.w = f.w;
    }
    this.fittedOn = outcomes.length;
    for (let i = 0; i < this.n; i++) this.est[i] = sigmoid(linear(this.rows[i]!, this.w, this.offset[i]!));
  }

  /** P(a reviewer accepts proposal i). */
  estimate(i: number): number {
    return this.est[i]!;
  }

  /** The prior alone for proposal i (before any decision). */
  priorEstimate(i: number): number {
    return sigmoid(this.offset[i]!);
  }

  estimates(): Float64Array {
    return Float64Array.from(this.est);
  }

  /** The fitted weights by name (numeric features; pair indicators as 'pair:g->p'). */
  weights(taxonomy?: string[]): Record<string, number> {
    const out: Record<string, number> = {};
    FEATURES.forEach((f, j) => (out[f] = this.w[j]!));
    for (let g = 0; g < this.classes; g++) {
      for (let p = 0; p < this.classes; p++) {
        const v = this.w[NUMERIC + g * this.classes + p]!;
        if (v !== 0) out[`pair:${taxonomy?.[g] ?? g}->${taxonomy?.[p] ?? p}`] = v;
      }
    }
    return out;
  }
}

/** Exploration bonus added to the estimate when ranking: EXPLORE / sqrt(1 + decisions on the item's class pair). */
export const EXPLORE = 0.05;
/** Every EXPLORE_EVERY-th place of the order goes to an undecided proposal drawn at random (0: none). */
export const EXPLORE_EVERY = 10;

export interface RankOptions {
  /** Bonus for class pairs with few decisions (default EXPLORE). */
  explore?: number;
  /** Every k-th place is a random draw (default EXPLORE_EVERY; 0 turns it off). */
  every?: number;
  /** Seeds the draws; the same seed gives the same order (default 0). Callers pass the number of decisions. */
  seed?: number;
}

/**
 * The review order by estimate. Two kinds of exploration, so the estimate does not lock in its first guess:
 * - the candidates (proposal indices) are sorted by estimate + explore / sqrt(1 + n_pair), highest first, n_pair =
 *   decisions so far on the item's (given, proposed) pair: pairs with few decisions come earlier than their estimate
 *   alone would put them, and the bonus fades as decisions arrive (ties: larger margin, then lower index);
 * - every `every`-th place goes to a candidate drawn uniformly at random from the rest (seeded): decisions on
 *   those are a sample of the whole queue, not only of its top, which keeps the refit honest below the top.
 * Returns the order and which places are random draws.
 */
export function rankByEstimate(
  model: EstimateModel,
  candidates: number[],
  decidedPairs: Map<number, number>,
  opts: RankOptions = {},
): { order: number[]; explored: Set<number> } {
  const explore = opts.explore ?? EXPLORE;
  const every = opts.every ?? EXPLORE_EVERY;
  const C = model.classes;
  const pairOf = (i: number): number => model.proposals[i]!.given * C + model.proposals[i]!.proposed;
  const score = new Float64Array(model.n);
  for (const i of candidates) score[i] = model.estimate(i) + explore / Math.sqrt(1 + (decidedPairs.get(pairOf(i)) ?? 0));
  const sorted = [...candidates].sort((x, y) => score[y]! - score[x]! || model.proposals[y]!.margin - model.proposals[x]!.margin || x - y);
  const explored = new Set<number>();
  if (!(every > 0) || sorted.length < every) return { order: sorted, explored };
  const rng = new Rng((opts.seed ?? 0) + 17);
  const placed = new Uint8Array(model.n);
  const order: number[] = [];
  let next = 0;
  // Random draws by rejection from the sorted list (the few already placed are skipped).
  for (let p = 0; p < sorted.length; p++) {
    if ((p + 1) % every === 0) {
      let pick = -1;
      for (let tries = 0; tries < 64 && pick < 0; tries++) {
        const c = sorted[next + rng.int(sorted.length - next)]!;
        if (!placed[c]) pick = c;
      }
      if (pick >= 0) {
        placed[pick] = 1;
        order.push(pick);
        explored.add(pick);
        continue;
      }
    }
    while (next < sorted.length && placed[sorted[next]!]) next++;
    if (next >= sorted.length) break;
    placed[sorted[next]!] = 1;
    order.push(sorted[next]!);
    next++;
  }
  for (const c of sorted) if (!placed[c]) order.push(c);
  return { order, explored };
}

/** Counts decisions per (given, proposed) pair key (given * C + proposed). */
export function pairCounts(model: EstimateModel, decided: Iterable<number>): Map<number, number> {
  const C = model.classes;
  const m = new Map<number, number>();
  for (const i of decided) {
    const p = model.proposals[i]!;
    const k = p.given * C + p.proposed;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

export interface CalibrationBin {
  /** Bin [lo, hi) of the estimate (the last one includes 1). */
  lo: number;
  hi: number;
  n: number;
  /** Mean estimate and observed acceptance rate in the bin (null when empty). */
  predicted: number | null;
  observed: number | null;
}

/** Predicted vs observed acceptance by tenths of the estimate. */
export function calibrationByDecile(predicted: ArrayLike<number>, accepted: ArrayLike<boolean | number>, bins = 10): CalibrationBin[] {
  const out: CalibrationBin[] = Array.from({ length: bins }, (_, k) => ({ lo: k / bins, hi: (k + 1) / bins, n: 0, predicted: 0, observed: 0 }));
  for (let i = 0; i < predicted.length; i++) {
    const b = out[Math.min(bins - 1, Math.max(0, Math.floor(predicted[i]! * bins)))]!;
    b.n++;
    b.predicted! += predicted[i]!;
    b.observed! += accepted[i] ? 1 : 0;
  }
  for (const b of out) {
    b.predicted = b.n ? b.predicted! / b.n : null;
    b.observed = b.n ? b.observed! / b.n : null;
  }
  return out;
}
