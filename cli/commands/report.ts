import { resolve } from 'node:path';
import { FerCleanError } from '../../src/errors.js';
import { OutputError, writeOutput } from '../../src/output.js';
import { changedSinceRun, datasetLabelStats, formatLabelStats } from '../../src/ingest/stats.js';
import { QUEUE_ORDERS } from '../../src/review/verbs.js';
import { reportRun } from '../../src/scn/index.js';
import { formatReport } from '../../src/scn/report.js';
import { resolveRun } from '../../src/store/runs.js';
import { duplicateGroups, flaggedImages, lastQualityCheck } from '../../src/quality/index.js';
import { formatEstimateSummary, summarizeEstimates } from '../../src/review/estimates/run-estimates.js';
import { err, out } from '../io.js';
import type { Command } from '../command.js';
import { choiceFlag, openExisting, parseIntFlag } from './shared.js';

const USAGE = `usage: fer-clean report [--run ID] [--dataset NAME] [--json] [--sheet FILE.png [--sheet-count N] [--order ORDER]] [--html FILE.html]

Scores a training run from what it stored: test accuracy against the reference and the given labels, noise
detection (against the run's injected flips, or against reference labels that differ from the given ones),
relabel accuracy, an importance histogram and the class pairs of the proposals.

  --run ID        the run (it names its dataset; default: the latest finished run of the dataset)
  --dataset NAME  with no --run: this dataset's latest finished run (needed when the database holds several);
                  with --run: must be the run's dataset
  --json          print the same figures as JSON
  --sheet FILE    also write a contact sheet (PNG): the first undecided faces of the review queue, each with
                  given -> proposed, its estimate and margin, then the training faces of lowest importance
  --sheet-count N faces in each part of the sheet (default 40)
  --order ORDER   the review order the sheet follows: ${QUEUE_ORDERS.join(' | ')} (default estimate, as review)
  --html FILE     also write one self-contained HTML page (styles inline, faces as data: URIs): the summary, the
                  given -> proposed matrix, the importance histogram, the sheet's faces, the duplicate groups side
                  by side and the flagged images (duplicates and flags as \`fer-clean quality\` last stored them)

With --json the figures also carry \`duplicates\` (groups: kind, similarity, splits, each image's path, split and
label) and \`flagged_images\` (each image once, with all its reasons: ingest flag, non-expression label, quality
flags with scores).
  --db PATH       database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const reportCommand: Command = {
  name: 'report',
  usage: USAGE,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    json: { type: 'boolean' },
    sheet: { type: 'string' },
    'sheet-count': { type: 'string' },
    order: { type: 'string' },
    html: { type: 'string' },
  },
  async run({ values }, io) {
    const db = openExisting(values, io);
    try {
      // the run and its dataset, resolved once (--run wins and names its dataset; --dataset alone: its latest finished run)
      const runId = parseIntFlag(values['run'], '--run');
      // a run asked for by id is found whatever its status, to say why it has nothing to report
      const run = resolveRun(db, { runId, dataset: values['dataset'] as string | undefined, done: runId === undefined, purpose: 'to report' });
      if (run.status !== 'done') throw new FerCleanError(`run ${run.id} is ${run.status}: nothing to report`);
      const report = reportRun(db, run);
      // images ingest flagged (no face, several faces): left out of embedding and training, listed by name
      const flagged = flaggedImages(db, run.dataset_id);
      const estimate = summarizeEstimates(db, run);
      const labels = datasetLabelStats(db, { datasetId: run.dataset_id });
      const changed = changedSinceRun(db, run);
      const check = lastQualityCheck(db, run.dataset_id);
      if (values['json']) {
        const duplicates = check ? duplicateGroups(db, run.dataset_id) : null;
        const quality = check ? { checked_at: check.checked_at, backbone: check.backbone, options: check.options } : null;
        out(io, JSON.stringify({ ...report, estimate, flagged_images: flagged, duplicates, quality, dataset_labels: labels, images_changed_since_run: changed }, null, 2));
      }
      else {
        for (const line of formatReport(report, Math.max(20, Math.min(60, (io.stdout.columns ?? 100) - 40)))) out(io, line);
        for (const line of formatLabelStats(labels)) out(io, line);
        if (changed) {
          out(io, `${changed} image${changed > 1 ? 's' : ''} of this run changed since it was trained (new pixels at the same path, ` +
            're-ingested): faces detected again, old embeddings dropped; `fer-clean embed` then `train` to score the new pictures');
        }
        if (check) {
          const groups = duplicateGroups(db, run.dataset_id);
          const n = (f: (g: (typeof groups)[number]) => boolean): number => groups.filter(f).length;
          out(io, `duplicates (\`fer-clean quality\`, ${check.checked_at}): ${n((g) => g.kind === 'exact')} exact and ${n((g) => g.kind === 'near')} near groups, ` +
            `${n((g) => g.splits.length > 1)} across splits, ${n((g) => g.labels_disagree)} whose labels disagree`);
        }
        if (estimate.proposals > 0) for (const line of ['', ...formatEstimateSummary(estimate)]) out(io, line);
        if (flagged.length) {
          out(io, '');
          out(io, `${flagged.length} flagged image${flagged.length > 1 ? 's' : ''} of the dataset (each once, with all its reasons; nothing deleted):`);
          for (const f of flagged.slice(0, 50)) out(io, `  ${f.path}: ${f.reasons.map((r) => `${r.flag} (${r.source === 'quality' ? r.detail : r.detail.split(':')[0]})`).join('; ')}`);
          if (flagged.length > 50) out(io, `  ... and ${flagged.length - 50} more (--json lists all)`);
        }
      }
      if (values['sheet'] !== undefined) {
        const order = choiceFlag(values['order'], '--order', QUEUE_ORDERS);
        const count = parseIntFlag(values['sheet-count'], '--sheet-count') ?? 40;
        const { sheetSections, renderSheet } = await import('../../src/review/report/sheet.js');
        const sections = sheetSections(db, run, { count, order });
        const png = await renderSheet(sections);
        const file = resolve(io.cwd, values['sheet'] as string);
        try {
          await writeOutput(file, png);
        } catch (e) {
          if (e instanceof OutputError) throw new FerCleanError(`${file}: cannot write the contact sheet (${e.reason})`);
          throw e;
        }
        (values['json'] ? err : out)(io, `contact sheet: ${file} (${sections.map((s) => `${s.faces.length} faces`).join(' + ')})`);
      }
      if (values['html'] !== undefined) {
        const { sheetSections } = await import('../../src/review/report/sheet.js');
        const { renderHtmlReport } = await import('../../src/quality/html.js');
        const order = choiceFlag(values['order'], '--order', QUEUE_ORDERS);
        const count = parseIntFlag(values['sheet-count'], '--sheet-count') ?? 40;
        const page = await renderHtmlReport(db, { run, report, labels, sheet: sheetSections(db, run, { count, order }) });
        const file = resolve(io.cwd, values['html'] as string);
        try {
          await writeOutput(file, Buffer.from(page));
        } catch (e) {
          if (e instanceof OutputError) throw new FerCleanError(`${file}: cannot write the HTML report (${e.reason})`);
          throw e;
        }
        (values['json'] ? err : out)(io, `html report: ${file}${check ? '' : ' (duplicates and quality flags not checked yet: run `fer-clean quality`)'}`);
      }
      return 0;
    } finally {
      db.close();
    }
  },
};
