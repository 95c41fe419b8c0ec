import { FerCleanError } from '../../src/errors.js';
import { resolveDataset } from '../../src/store/datasets.js';
import { reportRun } from '../../src/scn/index.js';
import { formatReport } from '../../src/scn/report.js';
import { resolveRun } from '../../src/store/runs.js';
import { formatEstimateSummary, summarizeEstimates } from '../../src/review/estimates.js';
import { out } from '../io.js';
import type { Command } from '../command.js';
import { openExisting, parseIntFlag } from './shared.js';

const USAGE = `usage: fer-clean report [--run ID] [--json]

Scores a training run from what it stored: test accuracy against the reference and the given labels, noise
detection (against the run's injected flips, or against reference labels that differ from the given ones),
relabel accuracy, an importance histogram and the class pairs of the proposals.

  --run ID        the run (default: the latest finished run)
  --dataset NAME  with no --run: the latest run on this dataset
  --json          print the same figures as JSON
  --db PATH       database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const reportCommand: Command = {
  name: 'report',
  usage: USAGE,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values }, io) {
    const db = openExisting(values, io);
    try {
      const runId =
        parseIntFlag(values['run'], '--run') ??
        resolveRun(db, {
          dataset: values['dataset'] !== undefined ? resolveDataset(db, values['dataset'] as string) : undefined,
          purpose: 'to report',
        }).id;
      const report = reportRun(db, runId);
      if (report.status !== 'done') throw new FerCleanError(`run ${runId} is ${report.status}: nothing to report`);
      const estimate = summarizeEstimates(db, resolveRun(db, { runId, purpose: 'to report' }));
      if (values['json']) out(io, JSON.stringify({ ...report, estimate }, null, 2));
      else {
        for (const line of formatReport(report, Math.max(20, Math.min(60, (io.stdout.columns ?? 100) - 40)))) out(io, line);
        if (estimate.proposals > 0) for (const line of ['', ...formatEstimateSummary(estimate)]) out(io, line);
      }
      return 0;
    } finally {
      db.close();
    }
  },
};
