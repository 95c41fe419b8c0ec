import { out } from '../io.js';
import { FerCleanError } from '../../src/errors.js';
import type { Command } from '../command.js';
import { groupQueue, nextItems, type QueueOrder } from '../../src/review/verbs.js';
import { openExisting, parseIntFlag } from './shared.js';

const USAGE = `usage: fer-clean queue [--run ID] [--limit K] [--annotator NAME] [--order ORDER] [--flag KIND] [--json]
       fer-clean queue --duplicates [--all] [--run ID] [--limit K] [--json]

Prints the next undecided proposals of a run in the order the review session shows them, with each proposal's
estimate: the probability that a reviewer accepts it (from the run's validation split before any decision,
refitted on every decision so far). Feed decisions back with \`fer-clean decide\`.

  --run ID          the run (default: the dataset's latest finished run)
  --dataset NAME    with no --run: its latest finished run; with --run: must be the run's dataset
  --limit K         at most K items (default: all)
  --annotator NAME  leave out items leased to other annotators' sessions only (default: every leased item)
  --order ORDER     estimate (default: highest estimate first, re-ranked as decisions arrive) | margin |
                    importance | class (the fixed orders of \`fer-clean review\`)
  --flag KIND       only images with that quality flag (non-face, outlier, dark, light, blurry,
                    low-information; from \`fer-clean quality\`)
  --duplicates      the duplicate groups whose labels disagree that need a decision (\`decide --duplicates\`),
                    largest first; --all: settled ones too
  --json            one JSON object: run, order, counts, the estimate's source and the items
  --db PATH         database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const queueCommand: Command = {
  name: 'queue',
  usage: USAGE,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    limit: { type: 'string' },
    annotator: { type: 'string' },
    order: { type: 'string' },
    flag: { type: 'string' },
    duplicates: { type: 'boolean' },
    all: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run({ values }, io) {
    const runId = parseIntFlag(values['run'], '--run');
    // Types here; ranges and the order are nextItems's to check, told back in flags.
    const limit = parseIntFlag(values['limit'], '--limit', Number.MIN_SAFE_INTEGER);
    const order = values['order'] as QueueOrder | undefined;
    if (values['all'] && !values['duplicates']) throw new FerCleanError('--all goes with --duplicates');
    if (values['duplicates'] && (values['flag'] !== undefined || values['order'] !== undefined || values['annotator'] !== undefined)) {
      throw new FerCleanError('--flag, --order and --annotator do not apply to --duplicates');
    }
    const db = openExisting(values, io);
    try {
      if (values['duplicates']) {
        const g = groupQueue(db, { runId, dataset: values['dataset'] as string | undefined, limit, all: Boolean(values['all']) });
        if (values['json']) {
          out(
            io,
            JSON.stringify({
              dataset: g.run.dataset.name,
              total: g.total,
              open: g.open,
              groups: g.groups.map((it) => ({
                kind: it.kind,
                similarity: round(it.similarity),
                pixel_similarity: it.pixelSimilarity === null ? null : round(it.pixelSimilarity),
                splits: it.splits,
                settled: it.settled,
                images: it.members.map((m) => ({ path: m.path, split: m.split, given: m.given, label: m.label })),
              })),
            }),
          );
          return 0;
        }
        out(io, `dataset ${g.run.dataset.name}: ${g.open} of ${g.total} duplicate groups with disagreeing labels need a decision`);
        for (const it of g.groups) {
          const state = it.settled === null ? 'open' : it.settled.kind === 'kept' ? `kept ${it.settled.label}` : 'different faces';
          out(io, `${it.kind} ${it.members.length} images, ${state}: ${it.members.map((m) => `${m.path} (${m.split}) ${m.label ?? '-'}`).join('; ')}`);
        }
        return 0;
      }
      const q = nextItems(db, {
        runId,
        dataset: values['dataset'] as string | undefined,
        limit,
        annotator: values['annotator'] as string | undefined,
        order,
        flag: values['flag'] as string | undefined,
      });
      if (values['json']) {
        out(
          io,
          JSON.stringify({
            run: q.run.id,
            dataset: q.run.dataset.name,
            order: q.order,
            ...(q.flag ? { flag: q.flag } : {}),
            total: q.total,
            undecided: q.undecided,
            estimate: q.estimate,
            items: q.items.map((it) => ({ ...it, estimate: round(it.estimate) })),
          }),
        );
        return 0;
      }
      out(
        io,
        `run ${q.run.id} (${q.run.dataset.name}): ${q.undecided} of ${q.total} proposals undecided; order ${q.order}; ` +
          `estimate: prior ${q.estimate.prior} (${q.estimate.priorRows} validation images), refitted on ${q.estimate.fittedOn} decision(s)` +
          (q.flag ? `; quality flag ${q.flag} only` : ''),
      );
      for (const it of q.items) {
        out(io, `${it.estimate.toFixed(3)}  ${it.given} -> ${it.proposed}  margin ${fmt(it.margin)}  importance ${fmt(it.importance)}  ${it.path}${it.explore ? '  (random draw)' : ''}`);
      }
      return 0;
    } finally {
      db.close();
    }
  },
};

const round = (v: number): number => Math.round(v * 1e4) / 1e4;
const fmt = (v: number | null): string => (v === null ? '-' : v.toFixed(2));
