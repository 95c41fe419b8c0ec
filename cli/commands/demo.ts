import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { exportLabels } from '../../src/export/index.js';
import { writeOutput } from '../../src/output.js';
import { BACKEND_PREFERENCES, type BackendPreference } from '../../src/features/backend.js';
import { DEFAULT_BACKBONE, resolveBackbone } from '../../src/features/backbones.js';
import { embedDataset } from '../../src/features/embed.js';
import { ingest } from '../../src/ingest/index.js';
import { fixturesDir, packageRoot } from '../../src/paths.js';
import { renderSheet, sheetSections } from '../../src/review/report/sheet.js';
import { queueTop, type QueueTop } from '../../src/review/report/top.js';
import { CL_DEFAULT_FOLDS, trainRun } from '../../src/scn/index.js';
import type { RunReport } from '../../src/scn/metrics.js';
import { formatReport, formatReportSummary } from '../../src/scn/report.js';
import { getDatasetById, type DatasetRow } from '../../src/store/datasets.js';
import { openStore, resolveDbPath, type DB } from '../../src/store/db.js';
import { resolveRun } from '../../src/store/runs.js';
import type { Command } from '../command.js';
import { err, out, type Io } from '../io.js';
import { ProgressBar } from '../progress.js';
import { formatEmbedResult } from './embed.js';
import { formatExportSummary } from './export.js';
import { printIngestSummary } from './ingest.js';
import { choiceFlag, parseIntFlag } from './shared.js';

/** Proposals scored at the top of each run's review queue. */
const TOP = 100;
/** Faces per part of the contact sheet. */
const SHEET_FACES = 40;

const USAGE = `usage: fer-clean demo [--db PATH] [--out FILE] [--sheet FILE] [--backend auto|tensorflow|wasm|cpu] [--faces N]

Runs the whole loop on the bundled faces (fixtures/demo: 5,500 real FER2013 faces with their original labels and
FER+ votes): ingest -> embed -> train SCN, and plain cross-entropy (ce) as the baseline -> report, comparing the two
against the FER+ majority and drawing the top of the review queue -> export; then prints the review command to try.
  --db PATH     database for the demo (default ./fer-clean-demo.db; re-running reuses what is there)
  --out FILE    where the corrected labels go (default ./fer-clean-demo-labels.csv)
  --sheet FILE  contact sheet of the review queue (default ./fer-clean-demo-sheet.png)
  --backend B   TensorFlow.js backend (default auto)
  --faces N     only about N of the bundled faces, every k-th of each split (a quicker look; the figures
                get noisier)`;

export const demoCommand: Command = {
  name: 'demo',
  usage: USAGE,
  options: { out: { type: 'string' }, sheet: { type: 'string' }, backend: { type: 'string' }, faces: { type: 'string' } },
  async run({ values }, io) {
    const dbPath = resolve(io.cwd, resolveDbPath((values['db'] as string | undefined) ?? 'fer-clean-demo.db', {}));
    const csv = resolve(io.cwd, (values['out'] as string | undefined) ?? 'fer-clean-demo-labels.csv');
    const sheet = resolve(io.cwd, (values['sheet'] as string | undefined) ?? 'fer-clean-demo-sheet.png');
    const backend = choiceFlag(values['backend'], '--backend', BACKEND_PREFERENCES) ?? 'auto';
    const faces = parseIntFlag(values['faces'], '--faces', 10);
    const bundled = resolve(fixturesDir(), 'demo', 'labels.csv');
    const source = faces === undefined ? bundled : await sliceOfBundle(bundled, faces, dbPath);
    const total = 6;
    const step = (i: number, title: string, argv: string[]): void =>
      out(io, `\n== ${i}/${total} ${title}\n$ fer-clean ${argv.map(quote).join(' ')}`);
    const db = openStore(dbPath);
    try {
      const shown = relative(io.cwd, source).startsWith('..') ? source : relative(io.cwd, source);
      const images = faces === undefined ? [] : ['--images', dirname(bundled)];
      step(1, 'ingest the bundled faces (original FER2013 labels; FER+ majority as the reference)', ['ingest', shown, ...images, '--name', 'demo']);
      const ingested = await ingest(db, {
        source,
        images: faces === undefined ? undefined : dirname(bundled),
        name: 'demo',
        defaultImagesDir: join(dirname(dbPath), 'fer2013-images'),
      });
      printIngestSummary(io, ingested, dbPath);
      const dataset = getDatasetById(db, ingested.dataset.id);

      step(2, 'embed every face with the default backbone', ['embed', '--backend', backend]);
      const backbone = resolveBackbone(DEFAULT_BACKBONE);
      let bar: ProgressBar | undefined;
      const embedded = await embedDataset(db, { datasetId: dataset.id, backbone: backbone.name, backend }, (done, n) => {
        if (n === 0) return;
        bar ??= new ProgressBar(io, `embed ${backbone.name}`, n);
        bar.update(done);
      });
      bar?.finish(embedded.computed);
      out(io, formatEmbedResult(embedded, backbone, dataset.name));

      step(3, 'train a Self-Cure Network on the original (noisy) labels', ['train', '--backend', backend]);
      const scn = await train(db, io, dataset, 'scn', backend);
      step(4, 'train the baseline on the same labels: plain cross-entropy, no importance weights, no relabeling', ['train', '--method', 'ce', '--backend', backend]);
      const ce = await train(db, io, dataset, 'ce', backend);

      step(5, 'report: SCN against the baseline, and the top of the review queue, against the FER+ majority', ['report', '--run', String(scn.runId), '--sheet', relative(io.cwd, sheet) || sheet]);
      for (const line of formatReport(scn.report, Math.max(20, Math.min(60, (io.stdout.columns ?? 100) - 40)))) out(io, line);
      const tops = [scn, ce].map((r) => queueTop(db, resolveRun(db, { runId: r.runId }), TOP));
      out(io, '');
      for (const line of formatComparison([scn.report, ce.report], tops)) out(io, line);
      const sections = sheetSections(db, resolveRun(db, { runId: scn.runId }), { count: SHEET_FACES });
      await writeOutput(sheet, await renderSheet(sections));
      out(io, `\ncontact sheet (open it in an image viewer): ${sheet}`);
      out(io, `  the first ${sections[0]!.faces.length} proposals of the review queue, then the ${sections[1]?.faces.length ?? 0} training faces SCN gave the lowest importance`);

      step(6, 'export the labels (nothing reviewed yet: final = original)', ['export', csv]);
      out(io, formatExportSummary(await exportLabels(db, { dataset, out: csv, runId: scn.runId })));
      printNext(io, dbPath, scn.runId, csv);
      return 0;
    } finally {
      db.close();
    }
  },
};

async function train(db: DB, io: Io, dataset: DatasetRow, method: 'scn' | 'ce', backend: BackendPreference): Promise<{ runId: number; report: RunReport }> {
  let bar: ProgressBar | undefined;
  const result = await trainRun(
    db,
    {
      dataset: dataset.name,
      method,
      backbone: DEFAULT_BACKBONE,
      backend,
      labelSource: { kind: 'given' },
      noiseRate: 0,
      noiseType: 'symmetric',
      seed: 1,
      folds: CL_DEFAULT_FOLDS,
    },
    (p) => {
      bar ??= new ProgressBar(io, `train ${method}`, p.total, 'epochs');
      bar.update(p.done);
    },
  );
  bar?.finish();
  for (const line of formatReportSummary(result.report)) err(io, line);
  out(io, `run ${result.runId} (${method})`);
  return result;
}

const pct = (x: number | null): string => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);
const frac = (a: number, b: number): string => (b === 0 ? '-' : `${a}/${b} (${Math.round((100 * a) / b)}%)`);

/** The demo's point in a few lines: test accuracy of scn and ce, and how right the top of each review queue is. */
export function formatComparison(reports: RunReport[], tops: QueueTop[]): string[] {
  const cols = reports.map((r) => r.method);
  const row = (label: string, cells: string[]): string => `  ${label.padEnd(62)}${cells.map((c) => c.padStart(16)).join('')}`.trimEnd();
  const lines = [
    'SCN against the baseline, same faces, same noisy labels; truth = the FER+ majority of 10 crowd taggers:',
    row('', cols),
    row(`test accuracy against the FER+ majority (${reports[0]!.test_images} test faces)`, reports.map((r) => pct(r.test_accuracy_reference))),
    row('training labels FER+ disagrees with, found', reports.map((r) => (r.detection ? frac(r.detection.true_positives, r.detection.noisy) : '-'))),
    row('proposals in all', tops.map((t) => String(t.queue))),
    row(`the first ${TOP} proposals of the review queue ('${tops[0]!.order}' order):`, cols.map(() => '')),
    row('  given label wrong (FER+ disagrees with it)', tops.map((t) => frac(t.wrongGiven, t.scored))),
    row('  proposed label right (it is the FER+ majority)', tops.map((t) => frac(t.rightProposal, t.scored))),
    `  (faces whose FER+ votes tie have no majority and are not scored: x/y counts the scored ones)`,
  ];
  return lines;
}

/** Every k-th row of each split of the bundled CSV, about `n` in all, written beside the database (same rows on a re-run). */
async function sliceOfBundle(bundled: string, n: number, dbPath: string): Promise<string> {
  const file = join(dirname(dbPath), `fer-clean-demo-faces-${n}.csv`);
  if (existsSync(file)) return file;
  const rows = parse(readFileSync(bundled), { columns: true }) as Record<string, string>[];
  const every = Math.max(1, Math.floor(rows.length / n));
  const picked = rows.filter((_, i) => i % every === 0);
  await writeOutput(file, stringify(picked, { header: true, columns: Object.keys(rows[0]!) }));
  return file;
}

const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function printNext(io: Io, db: string, runId: number, csv: string): void {
  // `fer-clean` itself when `npm link` put it on the PATH; the compiled entry point works from anywhere
  const rel = (p: string): string => {
    const r = relative(io.cwd, p);
    return quote(r && !r.startsWith('..') ? r : p);
  };
  const cli = `node ${rel(join(packageRoot(), 'dist', 'cli', 'main.js'))}`;
  out(io, `\nDone. Review the proposals (a terminal of at least 80x24):`);
  out(io, `  ${cli} review --db ${rel(db)} --run ${runId} --annotator "$USER"`);
  out(io, `then export the corrected labels:`);
  out(io, `  ${cli} export ${rel(csv)} --db ${rel(db)}`);
}
