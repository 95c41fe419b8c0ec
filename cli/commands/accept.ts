import { FerCleanError } from '../../src/errors.js';
import { bulkAccept, previewBulkAccept } from '../../src/review/domain/bulk.js';
import { MIN_DECISIONS_FOR_BULK } from '../../src/review/estimates/run-estimates.js';
import { out } from '../io.js';
import { UsageError, type Command } from '../command.js';
import { annotatorOf } from './decide.js';
import { openExisting, parseIntFlag, parseNumberFlag } from './shared.js';

const USAGE = `usage: fer-clean accept --run ID --annotator NAME --min-estimate P [--dry-run]

Bulk accept: accepts every undecided proposal of the run whose estimate (the probability that a reviewer accepts
it, refitted on the decisions so far) is at or above P, and prints how many and how many are expected wrong.
Each item is a decision of its own in the audit trail, marked with the bulk action (rule and estimate);
\`fer-clean undo\` (or u in the review session) reverts the whole bulk action at once.
P must be in (0, 1]; the run needs at least ${MIN_DECISIONS_FOR_BULK} reviewer decisions first.

  --run ID            the run (default: the dataset's latest finished run)
  --dataset NAME      with no --run: its latest finished run; with --run: must be the run's dataset
  --annotator NAME    who accepts (default: FER_CLEAN_ANNOTATOR)
  --min-estimate P    the threshold
  --dry-run           only say how many items and how many expected wrong
  --db PATH           database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const acceptCommand: Command = {
  name: 'accept',
  usage: USAGE,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    annotator: { type: 'string' },
    'min-estimate': { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
  async run({ values }, io) {
    // Types here; the range is bulkAccept's to check (minEstimate), told back as --min-estimate.
    const p = parseNumberFlag(values['min-estimate'], '--min-estimate');
    if (p === undefined) throw new UsageError(`--min-estimate P is required`, USAGE);
    const annotator = annotatorOf(values, io.env);
    const runId = parseIntFlag(values['run'], '--run');
    const db = openExisting(values, io);
    try {
      const opts = { runId, dataset: values['dataset'] as string | undefined, annotator, minEstimate: p };
      const r = values['dry-run'] ? previewBulkAccept(db, opts) : bulkAccept(db, opts);
      const held = r.held ? `; ${r.held} more held by other sessions, left alone` : '';
      out(
        io,
        `run ${r.run.id}: ${values['dry-run'] ? 'would accept' : 'accepted'} ${r.items} proposal(s) with estimate >= ${p}, ` +
          `expected wrong ${r.expectedWrong.toFixed(1)} (estimate fitted on ${r.fittedOn} decisions)${held}` +
          ('bulkId' in r ? `; bulk action ${r.bulkId}: \`fer-clean undo --run ${r.run.id} --annotator ${annotator}\` reverts it` : ''),
      );
      return 0;
    } finally {
      db.close();
    }
  },
};
