import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runTeam } from '../bench/team-driver.js';
import { packageRoot } from '../src/paths.js';
import { tempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

let t: ReturnType<typeof tempDir>;
let dbPath: string;
beforeEach(() => {
  t = tempDir();
  expect(existsSync(join(packageRoot(), 'dist', 'cli', 'main.js')), 'run `npm run build` first').toBe(true);
  dbPath = join(t.dir, 'team.db');
  seedReviewDb(dbPath, { images: 120 }).db.close();
});
afterEach(() => t.cleanup());

// Speed is the benchmark's business (`npm run bench -- team`); these check what must hold at any speed.
describe('a review team under load (real pseudo-terminals, one database)', { timeout: 120_000 }, () => {
  it('4 sessions keying every 20 ms while exports run: every key handled, no image decided twice, none lost', async () => {
    const r = await runTeam({ dbPath, workDir: t.dir, sessions: 4, steps: 12, paceMs: 20, burstEvery: 0, exportMeanwhile: true });
    expect(r.exports.failures).toEqual([]);
    expect(r.exports.runs).toBeGreaterThan(0);
    expect(r.decidedTwice).toBe(0);
    for (const s of r.sessions) {
      expect([s.annotator, s.exitCode, s.noFace, s.handled]).toEqual([s.annotator, 0, 0, s.keysSent]);
    }
    expect(r.rows).toBe(r.keysSent);
  });

  // Keys typed faster than the session reads them arrive as one chunk ("ara"): each must count (issue 10; the
  // handling is core's handleKey, issue 12).
  it('keys arriving in one chunk are each handled, none decided twice', async () => {
    const r = await runTeam({ dbPath, workDir: t.dir, sessions: 2, steps: 6, paceMs: 20, burstEvery: 2, burst: 3 });
    expect(r.decidedTwice).toBe(0);
    for (const s of r.sessions) expect([s.annotator, s.exitCode, s.handled]).toEqual([s.annotator, 0, s.keysSent]);
  });
});
