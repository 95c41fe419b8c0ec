import { resolve } from 'node:path';
import { FerCleanError } from '../../src/errors.js';
import { annotatorName } from '../../src/printable.js';
import { decideFromCsv, decideGroupsFromCsv } from '../../src/review/verbs.js';
import { out } from '../io.js';
import { UsageError, type Command } from '../command.js';
import { openExisting, parseIntFlag } from './shared.js';

const USAGE = `usage: fer-clean decide --run ID --annotator NAME FILE.csv
       fer-clean decide --duplicates --run ID --annotator NAME FILE.csv

Applies review decisions from a CSV with the columns path (as \`fer-clean queue\` prints it), action (accepted,
rejected or manual) and label (the class, for manual; read as ingest reads labels: happy = happiness, any case).
A label on an accepted row must be the proposal, on a rejected row the given label. They go into the same append-only audit trail as the review
session's keys, under the same leases. Any problem (unknown path, unknown label or action, a path twice, an item
decided by someone else or being reviewed now) is reported with file:line and nothing is applied.
A row that repeats your decision in force changes nothing, so the same file can be applied twice.

  --run ID          the run (default: the dataset's latest finished run)
  --dataset NAME    with no --run: its latest finished run; with --run: must be the run's dataset
  --annotator NAME  who decided (default: FER_CLEAN_ANNOTATOR)
  --duplicates      decide duplicate groups whose labels disagree (\`queue --duplicates\`): path is any image of
                    the group, action keep-label (with label: every image of the group takes it) or different-faces
  --db PATH         database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const decideCommand: Command = {
  name: 'decide',
  usage: USAGE,
  allowPositionals: true,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    annotator: { type: 'string' },
    duplicates: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one CSV file, got ${positionals.length}`, USAGE);
    const annotator = annotatorOf(values, io.env);
    const runId = parseIntFlag(values['run'], '--run');
    const db = openExisting(values, io);
    try {
      if (values['duplicates']) {
        const g = decideGroupsFromCsv(db, { runId, dataset: values['dataset'] as string | undefined, annotator, file: resolve(io.cwd, positionals[0]!) });
        out(
          io,
          `dataset ${g.run.dataset.name}: ${g.keepLabel + g.differentFaces} group decision(s) by ${annotator} (${g.keepLabel} keep-label, ` +
            `${g.differentFaces} different-faces)${g.unchanged ? `; ${g.unchanged} unchanged` : ''}`,
        );
        return 0;
      }
      const s = decideFromCsv(db, { runId, dataset: values['dataset'] as string | undefined, annotator, file: resolve(io.cwd, positionals[0]!) });
      out(
        io,
        `run ${s.run.id}: ${s.accepted + s.rejected + s.manual} decision(s) by ${annotator} (${s.accepted} accepted, ${s.rejected} rejected, ` +
          `${s.manual} manual)${s.unchanged ? `; ${s.unchanged} unchanged` : ''}`,
      );
      return 0;
    } finally {
      db.close();
    }
  },
};

/** --annotator, else FER_CLEAN_ANNOTATOR; scripted verbs never guess from the login. */
export function annotatorOf(values: Record<string, unknown>, env: NodeJS.ProcessEnv): string {
  const a = String(values['annotator'] ?? env['FER_CLEAN_ANNOTATOR'] ?? '').trim();
  if (!a) throw new FerCleanError('who is deciding? pass --annotator NAME (or set FER_CLEAN_ANNOTATOR)');
  return annotatorName(a);
}
