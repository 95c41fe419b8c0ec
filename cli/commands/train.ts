import { FerCleanError, isFerCleanError } from '../../src/errors.js';
import { BACKEND_PREFERENCES } from '../../src/features/backend.js';
import { DEFAULT_BACKBONE } from '../../src/features/store.js';
import { DEFAULT_TTA, TTAS } from '../../src/features/tta.js';
import { CL_DEFAULT_FOLDS, RunInterruptedError, SCN_PROPOSALS, trainRun, validateTrainOptions, type TrainRunOptions } from '../../src/scn/index.js';
import { parseLabelSource } from '../../src/scn/data.js';
import { NOISE_TYPES } from '../../src/scn/noise.js';
import { METHODS } from '../../src/store/runs.js';
import { HEAD_DEFAULTS, SCN_DEFAULTS, type HeadOptions, type ScnOptions } from '../../src/scn/train.js';
import { err, out } from '../io.js';
import { ProgressBar } from '../progress.js';
import type { Command } from '../command.js';
import { choiceFlag, openExisting, parseNumberFlag, parseWholeFlag } from './shared.js';
import { formatReportSummary } from '../../src/scn/report.js';
import { PROBS_TOLERANCE, probsRun } from '../../src/scn/probs.js';

const H = HEAD_DEFAULTS;
const S = SCN_DEFAULTS;

const USAGE = `usage: fer-clean train [options]

Trains a head on the cached embeddings and stores the run (config, epochs, per-image importance, predictions and
label proposals). Prints the run id on standard output; progress and a summary go to standard error.

  --method M             scn (Self-Cure Network, default) | ce (plain cross-entropy) | cl (confident learning)
  --dataset NAME         dataset (default: the run's dataset with --label-source run:ID, else the only one)
  --backbone NAME        embeddings to train on (default ${DEFAULT_BACKBONE}; a+b concatenates)
  --tta T                which embeddings: flip (face and mirror averaged) | none (default ${DEFAULT_TTA} when
                         stored for every image, else the other kind when it is)
  --backend B            ${BACKEND_PREFERENCES.join(' | ')} (default auto)
  --label-source S       given (default) | reference (e.g. FER+ majority; images without one are not trained on)
                         | run:ID (another run's labels with its proposals applied)
  --noise RATE           flip this fraction of the training labels for this run only (default 0)
  --noise-type T         symmetric (to a uniformly drawn other class, default) | asymmetric (to a confusable class)
  --seed N               seeds weights, shuffling, dropout and noise (default 1)
 head (all methods):
  --epochs N             default ${H.epochs}
  --hidden N             hidden units, 0 for a linear head (default ${H.hidden})
  --dropout P            default ${H.dropout}
  --lr X                 Adam learning rate (default ${H.lr})
  --lr-decay X           learning rate factor per epoch (default ${H.lrDecay})
  --weight-decay X       L2 weight decay (default ${H.weightDecay})
  --batch N              mini-batch size (default ${H.batchSize})
  --no-standardize       use the embeddings as they are (default: standardise with the training images' mean/sd)
 scn:
  --beta X               fraction of each batch in the high-importance group (default ${S.beta})
  --delta1 X             rank-regularization margin (default ${S.delta1})
  --delta2 X             relabel margin P_max - P_given (default ${S.delta2})
  --gamma X              total loss = gamma*L_RR + (1-gamma)*L_WCE (default ${S.gamma})
  --relabel-epoch K      first epoch that relabels (default ${S.relabelEpoch})
  --relabel-scope S      low (low-importance group, the paper, default) | all (every sample, the authors' code)
  --importance-window N  average importance over the last N epochs (default ${S.importanceWindow})
  --propose P            margin (default: the final classifier's class when P_class - P_given > delta2, i.e. Eq. 4
                         applied once more at the end to every training image) | predicted (its class whenever it
                         differs from the given label) | relabeled (the label SCN trained with at the end)
  --trust-decisions      train on the review decisions in force as trusted labels: decided images keep the decided
                         label (never relabeled, never in the low-importance group) and get no new proposal
 cl:
  --folds K              folds of the out-of-fold probabilities (default ${CL_DEFAULT_FOLDS})
  --db PATH              database (default ./fer-clean.db, or FER_CLEAN_DB)

 Bring your own model's out-of-fold predictions instead of training (a run of method 'probs'):
  --probs FILE           FILE.csv: a 'path' column (each image's path as the dataset's source wrote it) and one
                         column per class, named as the dataset's classes (any order; happy/happiness alike); or
                         FILE.npy: an images x classes float16/32/64 array, columns in the dataset's class order
                         (FER: anger, disgust, fear, happiness, sadness, surprise, neutral[, contempt]), with --paths. Each row: probabilities in [0, 1] summing to 1
                         (within ${PROBS_TOLERANCE}; 1e-2 for float16), e.g. sklearn's cross_val_predict(...,
                         method='predict_proba'). Proposals follow cleanlab's find_label_issues default
                         (prune_by_noise_rate), each proposing its argmax class. Every labelled image needs a row.
  --paths PATHS.txt      for a .npy file: one image path per line, line k naming row k
  --skip-bad             leave out images with no row and skip rows naming no image (default: an error)
  (--dataset and --trust-decisions apply; the training options above do not)`;

export const trainCommand: Command = {
  name: 'train',
  usage: USAGE,
  options: {
    method: { type: 'string' },
    dataset: { type: 'string' },
    backbone: { type: 'string' },
    tta: { type: 'string' },
    backend: { type: 'string' },
    'label-source': { type: 'string' },
    noise: { type: 'string' },
    'noise-type': { type: 'string' },
    seed: { type: 'string' },
    epochs: { type: 'string' },
    hidden: { type: 'string' },
    dropout: { type: 'string' },
    lr: { type: 'string' },
    'lr-decay': { type: 'string' },
    'weight-decay': { type: 'string' },
    batch: { type: 'string' },
    'no-standardize': { type: 'boolean' },
    beta: { type: 'string' },
    delta1: { type: 'string' },
    delta2: { type: 'string' },
    gamma: { type: 'string' },
    'relabel-epoch': { type: 'string' },
    'relabel-scope': { type: 'string' },
    'importance-window': { type: 'string' },
    propose: { type: 'string' },
    'trust-decisions': { type: 'boolean' },
    folds: { type: 'string' },
    probs: { type: 'string' },
    paths: { type: 'string' },
    'skip-bad': { type: 'boolean' },
  },
  async run({ values }, io) {
    const v = values;
    if (v['probs'] !== undefined) return runProbs(v, io);
    const probsOnly = ['paths', 'skip-bad'].filter((k) => v[k] !== undefined);
    if (probsOnly.length) throw new FerCleanError(`${probsOnly.map((k) => `--${k}`).join(', ')} go${probsOnly.length > 1 ? '' : 'es'} with --probs FILE`);
    // Types here; ranges (and which options go with which method) are checked by trainRun, named as in
    // TrainRunOptions, and its complaints are told back in flags (FLAG_OF).
    const num = (k: string): number | undefined => parseNumberFlag(v[k], `--${k}`);
    const whole = (k: string): number | undefined => parseWholeFlag(v[k], `--${k}`);
    const head: Partial<HeadOptions> = drop({
      epochs: whole('epochs'),
      hidden: whole('hidden'),
      dropout: num('dropout'),
      lr: num('lr'),
      lrDecay: num('lr-decay'),
      weightDecay: num('weight-decay'),
      batchSize: whole('batch'),
      standardize: v['no-standardize'] ? false : undefined,
    });
    const scn: Partial<ScnOptions> = drop({
      beta: num('beta'),
      delta1: num('delta1'),
      delta2: num('delta2'),
      gamma: num('gamma'),
      relabelEpoch: whole('relabel-epoch'),
      relabelScope: choiceFlag(v['relabel-scope'], '--relabel-scope', ['low', 'all'] as const),
      importanceWindow: whole('importance-window'),
    });
    const method = choiceFlag(v['method'], '--method', METHODS) ?? 'scn';
    const propose = choiceFlag(v['propose'], '--propose', SCN_PROPOSALS);
    if (method !== 'cl' && v['folds'] !== undefined) throw new FerCleanError(`--folds applies to --method cl only`);
    const noiseRate = num('noise') ?? 0;
    const noiseType = choiceFlag(v['noise-type'], '--noise-type', NOISE_TYPES) ?? 'symmetric';
    if (v['noise-type'] !== undefined && noiseRate === 0) throw new FerCleanError('--noise-type needs --noise RATE');
    const options: TrainRunOptions = {
      dataset: v['dataset'] as string | undefined,
      method,
      backbone: (v['backbone'] as string | undefined) ?? DEFAULT_BACKBONE,
      tta: choiceFlag(v['tta'], '--tta', TTAS),
      backend: choiceFlag(v['backend'], '--backend', BACKEND_PREFERENCES) ?? 'auto',
      labelSource: parseLabelSource((v['label-source'] as string | undefined) ?? 'given'),
      noiseRate,
      noiseType,
      seed: whole('seed') ?? 1,
      head,
      scn,
      folds: whole('folds') ?? CL_DEFAULT_FOLDS,
      propose,
      trustDecisions: Boolean(v['trust-decisions']),
    };
    try {
      validateTrainOptions(options);
    } catch (e) {
      if (!isFerCleanError(e)) throw e;
      throw new FerCleanError(inFlags(e.message), e.details.map(inFlags));
    }
    const db = openExisting(values, io);
    let bar: ProgressBar | undefined;
    let epochsDone = 0;
    // Ctrl-C or SIGTERM: training stops at its next pause (~100 ms) and the run is marked interrupted; a second
    // signal ends the process at once.
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stop.signal.aborted) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
      stop.abort(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const { runId, report } = await trainRun(
        db,
        { ...options, signal: stop.signal },
        (p) => {
          bar ??= new ProgressBar(io, `train ${method}`, p.total, 'epochs');
          epochsDone = p.done;
          bar.update(p.done);
        },
      );
      bar?.finish();
      out(io, String(runId));
      for (const line of formatReportSummary(report)) err(io, line);
      err(io, `details: fer-clean report --run ${runId}`);
      return 0;
    } catch (e) {
      if (!(e instanceof RunInterruptedError)) throw e;
      bar?.finish(epochsDone);
      err(io, `fer-clean train: ${e.message}`);
      return e.reason === 'SIGTERM' ? 143 : 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      db.close();
    }
  },
};

/** `train --probs FILE`: a run from imported out-of-fold probabilities. */
async function runProbs(v: Record<string, unknown>, io: Parameters<Command['run']>[1]): Promise<number> {
  const allowed = new Set(['probs', 'paths', 'skip-bad', 'dataset', 'trust-decisions', 'db']);
  const other = Object.keys(v).filter((k) => v[k] !== undefined && !allowed.has(k));
  if (other.length) throw new FerCleanError(`--probs makes a run from the file's probabilities: it takes no ${other.map((k) => `--${k}`).join(', ')}`);
  const db = openExisting(v, io);
  try {
    const { runId, report } = await probsRun(db, {
      file: v['probs'] as string,
      paths: v['paths'] as string | undefined,
      dataset: v['dataset'] as string | undefined,
      skipBad: Boolean(v['skip-bad']),
      trustDecisions: Boolean(v['trust-decisions']),
    });
    out(io, String(runId));
    for (const line of formatReportSummary(report)) err(io, line);
    err(io, `details: fer-clean report --run ${runId}`);
    return 0;
  } finally {
    db.close();
  }
}

/** The flag of each of trainRun's options, to tell its complaints in the user's words. */
const FLAG_OF: Record<string, string> = {
  'head.hidden': '--hidden',
  'head.dropout': '--dropout',
  'head.lr': '--lr',
  'head.lrDecay': '--lr-decay',
  'head.weightDecay': '--weight-decay',
  'head.batchSize': '--batch',
  'head.epochs': '--epochs',
  'scn.beta': '--beta',
  'scn.delta1': '--delta1',
  'scn.delta2': '--delta2',
  'scn.gamma': '--gamma',
  'scn.relabelEpoch': '--relabel-epoch',
  'scn.relabelScope': '--relabel-scope',
  'scn.importanceWindow': '--importance-window',
  folds: '--folds',
  noiseRate: '--noise',
  noiseType: '--noise-type',
  seed: '--seed',
  propose: '--propose',
  method: '--method',
};

/** A message of trainRun's about its options, in flags: `scn.beta` -> `--beta`, `method ce` -> `--method ce`. */
const inFlags = (text: string): string =>
  text.replace(/\b(?:head|scn)\.\w+|\b(?:folds|noiseRate|noiseType|seed|propose)\b|^method\b/g, (m) => FLAG_OF[m] ?? m);

/** The object without its undefined entries (so defaults apply). */
function drop<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
}
