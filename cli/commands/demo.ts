import { dirname, join, relative, resolve } from 'node:path';
import { exportLabels } from '../../src/export/index.js';
import { BACKEND_PREFERENCES } from '../../src/features/backend.js';
import { DEFAULT_BACKBONE, resolveBackbone } from '../../src/features/backbones.js';
import { embedDataset } from '../../src/features/embed.js';
import { ingest } from '../../src/ingest/index.js';
import { fixturesDir, packageRoot } from '../../src/paths.js';
import { CL_DEFAULT_FOLDS, trainRun } from '../../src/scn/index.js';
import { formatReport, formatReportSummary } from '../../src/scn/report.js';
import { getDatasetById } from '../../src/store/datasets.js';
import { openStore, resolveDbPath } from '../../src/store/db.js';
import type { Command } from '../command.js';
import { err, out, type Io } from '../io.js';
import { ProgressBar } from '../progress.js';
import { formatEmbedResult } from './embed.js';
import { formatExportSummary } from './export.js';
import { printIngestSummary } from './ingest.js';
import { choiceFlag } from './shared.js';

const USAGE = `usage: fer-clean demo [--db PATH] [--out FILE] [--backend auto|tensorflow|wasm|cpu]

Runs the whole loop on the bundled fixtures (296 real FER2013 faces with their original labels and FER+ votes):
ingest -> embed -> train (SCN) -> report -> export, then prints the review command to try.
  --db PATH     database for the demo (default ./fer-clean-demo.db; re-running reuses what is there)
  --out FILE    where the corrected labels go (default ./fer-clean-demo-labels.csv)
  --backend B   TensorFlow.js backend (default auto)`;

export const demoCommand: Command = {
  name: 'demo',
  usage: USAGE,
  options: { out: { type: 'string' }, backend: { type: 'string' } },
  async run({ values }, io) {
    const dbPath = resolve(io.cwd, resolveDbPath((values['db'] as string | undefined) ?? 'fer-clean-demo.db', {}));
    const csv = resolve(io.cwd, (values['out'] as string | undefined) ?? 'fer-clean-demo-labels.csv');
    const backend = choiceFlag(values['backend'], '--backend', BACKEND_PREFERENCES) ?? 'auto';
    const source = resolve(fixturesDir(), 'ferplus', 'labels.csv');
    const total = 5;
    const step = (i: number, title: string, argv: string[]): void =>
      out(io, `\n== ${i}/${total} ${title}\n$ fer-clean ${argv.map(quote).join(' ')}`);
    const db = openStore(dbPath);
    try {
      step(1, 'ingest the fixtures (original FER2013 labels; FER+ majority as the reference)', ['ingest', source, '--name', 'demo']);
      const ingested = await ingest(db, { source, name: 'demo', defaultImagesDir: join(dirname(dbPath), 'fer2013-images') });
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
      let trainBar = undefined as ProgressBar | undefined;
      const { runId, report } = await trainRun(
        db,
        {
          dataset: dataset.name,
          method: 'scn',
          backbone: DEFAULT_BACKBONE,
          backend,
          labelSource: { kind: 'given' },
          noiseRate: 0,
          noiseType: 'symmetric',
          seed: 1,
          folds: CL_DEFAULT_FOLDS,
        },
        (p) => {
          trainBar ??= new ProgressBar(io, 'train scn', p.total, 'epochs');
          trainBar.update(p.done);
        },
      );
      trainBar?.finish();
      out(io, String(runId));
      for (const line of formatReportSummary(report)) err(io, line);
      err(io, `details: fer-clean report --run ${runId}`);

      step(4, 'report: accuracy, noise detection against FER+, importance', ['report']);
      for (const line of formatReport(report, Math.max(20, Math.min(60, (io.stdout.columns ?? 100) - 40)))) out(io, line);

      step(5, 'export the labels (nothing reviewed yet: final = original)', ['export', csv]);
      out(io, formatExportSummary(await exportLabels(db, { dataset, out: csv, runId })));
      printNext(io, dbPath, runId, csv);
      return 0;
    } finally {
      db.close();
    }
  },
};

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
