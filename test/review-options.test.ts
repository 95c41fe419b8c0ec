import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { ReviewOptionError } from '../src/review/domain/options.js';
import { bulkAccept, previewBulkAccept } from '../src/review/domain/bulk.js';
import { decideFromCsv, nextItems, undoLastScripted } from '../src/review/verbs.js';
import { ReviewSession } from '../src/review/session/session.js';
import { decisionsOfRun } from '../src/review/domain/decisions.js';
import { cliRunner, useStore, useTempDir } from './helpers.js';
import { seedSynthetic } from './learn-helpers.js';

/** Issue 18: the review verbs' options are checked at the library's door, in its names; the CLI tells them in flags. */
describe('review options at the library door', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedSynthetic(join(dir, 'o.db'), 40, 0));
  const cli = cliRunner({ cwd: () => t.dir, db: () => join(t.dir, 'o.db') });
  const refused = (fn: () => unknown, option: string, message: string) => {
    let e: unknown;
    try {
      fn();
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(ReviewOptionError);
    expect([(e as ReviewOptionError).option, (e as Error).message]).toEqual([option, message]);
  };

  it('every verb names the option as the library does, and writes nothing', () => {
    const runId = s.runId;
    refused(() => nextItems(s.db, { runId, limit: 0 }), 'limit', "limit must be a whole number >= 1, got '0'");
    refused(() => nextItems(s.db, { runId, limit: 2.5 }), 'limit', "limit must be a whole number >= 1, got '2.5'");
    refused(() => nextItems(s.db, { runId, order: 'random' as never }), 'order', "order must be one of estimate, margin, importance, class, got 'random'");
    refused(() => nextItems(s.db, { runId, annotator: ' ' }), 'annotator', "annotator must be a name (not empty), got ' '");
    refused(() => previewBulkAccept(s.db, { runId, annotator: 'ana', minEstimate: 1.01 }), 'minEstimate', "minEstimate must be a number in (0, 1], got '1.01'");
    refused(() => previewBulkAccept(s.db, { runId, annotator: '', minEstimate: 0.9 }), 'annotator', "annotator must be a name (not empty), got ''");
    refused(() => bulkAccept(s.db, { runId, annotator: '  ', minEstimate: 0.9 }), 'annotator', "annotator must be a name (not empty), got '  '");
    const f = join(t.dir, 'd.csv');
    writeFileSync(f, `path,action\n${s.proposals[0]!.path},accepted\n`);
    refused(() => decideFromCsv(s.db, { runId, annotator: '\t', file: f }), 'annotator', "annotator must be a name (not empty), got '\t'");
    refused(() => undoLastScripted(s.db, { runId, annotator: '' }), 'annotator', "annotator must be a name (not empty), got ''");
    refused(() => ReviewSession.open(s.db, { runId, annotator: ' ' }), 'annotator', "annotator must be a name (not empty), got ' '");
    refused(() => ReviewSession.open(s.db, { runId, annotator: 'ana', order: 'size' as never }), 'order', "order must be one of estimate, margin, importance, class, got 'size'");
    expect(decisionsOfRun(s.db, runId)).toEqual([]);
  });

  it('the CLI parses types only and tells the library\'s complaints in its flags', async () => {
    let r = await cli('queue', '--run', String(s.runId), '--limit', '0');
    expect([r.code, r.stderr]).toEqual([1, "fer-clean queue: --limit must be a whole number >= 1, got '0'\n"]);
    r = await cli('queue', '--run', String(s.runId), '--order', 'random');
    expect([r.code, r.stderr]).toEqual([1, "fer-clean queue: --order must be one of estimate, margin, importance, class, got 'random'\n"]);
    r = await cli('queue', '--run', String(s.runId), '--annotator', ' ');
    expect([r.code, r.stderr]).toEqual([1, "fer-clean queue: --annotator must be a name (not empty), got ' '\n"]);
    r = await cli('accept', '--run', String(s.runId), '--annotator', 'ana', '--min-estimate', '0', '--dry-run');
    expect([r.code, r.stderr]).toEqual([1, "fer-clean accept: --min-estimate must be a number in (0, 1], got '0'\n"]);
    r = await cli('accept', '--run', String(s.runId), '--annotator', 'ana', '--min-estimate', 'high');
    expect([r.code, r.stderr]).toEqual([1, "fer-clean accept: --min-estimate must be a number, got 'high'\n"]);
  });
});
