import { resolve } from 'node:path';
import { FerCleanError } from '../../src/errors.js';
import { exportLabels, type ExportSummary } from '../../src/export/index.js';
import { resolveDataset } from '../../src/store/datasets.js';
import { resolveRun } from '../../src/store/runs.js';
import { err, out } from '../io.js';
import { UsageError, type Command } from '../command.js';
import { choiceFlag, openExisting, parseIntFlag } from './shared.js';

const USAGE = `usage: fer-clean export OUT.csv [options]

Writes every image's final label: an accepted proposal or a manual label from review; rejected and
undecided images keep their original label. OUT - writes to standard output (the summary goes to standard
error). An existing file is replaced atomically (temp file, then rename) keeping its mode; a symlink is written
through to its target; a file with several hard links is rewritten in place (after the new content is complete);
a device or a named pipe is written to directly.

Columns: path, split, original_label, final_label, changed, decision (none/accepted/rejected/manual),
annotator, decided_at, importance, proposed_label, proposal_margin, estimate (estimated probability that a
reviewer accepts the proposal, refitted on the decisions so far), reference_label.
  --run ID                        run whose importance and proposals are exported (it names its dataset;
                                  default: the dataset's latest finished run)
  --dataset NAME                  which dataset (needed when the database holds several and no --run is given;
                                  with --run: must be the run's dataset)
  --only-decided                  only images with a review decision
  --include-undecided-proposals   undecided images with a proposal take the proposed label
  --format csv|same               same = the dataset's own format (csv, ferplus, rafdb list, fer2013.csv,
                                  affectnet: the annotation file byte for byte, changed expressions rewritten)
  --drop-non-expression           leave out images whose label is not an expression class (AffectNet 8 none,
                                  9 uncertain, 10 no-face); by default they are written with their label unchanged
  --dedupe keep|drop              duplicate images as \`fer-clean quality\` grouped them: keep all (default) or
                                  write one per group (a test image first, then valid, then train; a group
                                  marked as different faces in \`review --duplicates\` keeps all its images)
  --db PATH                       database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const exportCommand: Command = {
  name: 'export',
  usage: USAGE,
  allowPositionals: true,
  options: {
    dataset: { type: 'string' },
    run: { type: 'string' },
    'only-decided': { type: 'boolean' },
    'include-undecided-proposals': { type: 'boolean' },
    format: { type: 'string' },
    'drop-non-expression': { type: 'boolean' },
    dedupe: { type: 'string' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one output file, got ${positionals.length}`, USAGE);
    const format = choiceFlag(values['format'], '--format', ['csv', 'same'] as const);
    const dedupe = choiceFlag(values['dedupe'], '--dedupe', ['keep', 'drop'] as const);
    const runId = parseIntFlag(values['run'], '--run');
    const db = openExisting(values, io);
    try {
      // the run and its dataset, resolved once: --run wins and names its dataset; --dataset alone: its latest finished
      // run; no run yet: the dataset's labels and decisions without SCN fields
      const named = values['dataset'] as string | undefined;
      const run = resolveRun(db, { runId, dataset: named, purpose: 'to export', optional: true });
      const dataset = run?.dataset ?? resolveDataset(db, named);
      const toStdout = positionals[0] === '-';
      const s = await exportLabels(db, {
        dataset,
        out: toStdout ? io.stdout : resolve(io.cwd, positionals[0]!),
        run,
        onlyDecided: Boolean(values['only-decided']),
        includeUndecidedProposals: Boolean(values['include-undecided-proposals']),
        format,
        dropNonExpression: Boolean(values['drop-non-expression']),
        dedupe,
      });
      (toStdout ? err : out)(io, formatExportSummary(s));
      return 0;
    } finally {
      db.close();
    }
  },
};

/** The line that sums up an export (also the demo's). */
export function formatExportSummary(s: ExportSummary): string {
  const d = s.decisions;
  return `wrote ${s.rows} rows to ${s.out}: ${s.changed} labels changed (${d.accepted} accepted, ${d.manual} manual, ${d.rejected} rejected${s.proposalsApplied ? `, ${s.proposalsApplied} unreviewed proposals applied` : ''})${s.runId !== null ? `; SCN fields from run ${s.runId}` : ''}`;
}
