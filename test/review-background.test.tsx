import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cleanup, render } from 'ink-testing-library';
import { ReviewSession } from '../src/review/session/session.js';
import { loadQueue, REVIEW_ORDERS } from '../src/review/domain/proposals.js';
import { decisionsOfRun } from '../src/review/domain/decisions.js';
import { loadEstimates, refit } from '../src/review/estimates/run-estimates.js';
import { REFIT_PAUSE_MS } from '../src/review/estimates/learner.js';
import { resolveRun } from '../src/store/runs.js';
import { App } from '../src/review/terminal/App.js';
import { useStore, useTempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

async function until(ok: () => boolean, what: string, frame?: () => string | undefined): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < 20_000) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}${frame ? `; last frame:\n${stripAnsi(frame() ?? '')}` : ''}`);
}

/**
 * Issue 18 item 7: the rest of the queue and the estimates are read in small background steps between keys, not in
 * one read on the main thread; keys are handled while they are read, and what is read equals a read in one go.
 */
describe('review queue and estimates read in steps between keys', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedReviewDb(join(dir, 'b.db'), { images: 40, proposals: 30 }));
  const run = () => resolveRun(s.db, { runId: s.runId });
  afterEach(() => cleanup());

  it('reads the queue in slices to the same items as one read, in every order, with ties and NULL margins', () => {
    s.db.exec(`UPDATE run_images SET proposal_margin = 0.5 WHERE image_id % 3 = 0;
               UPDATE run_images SET proposal_margin = NULL WHERE image_id % 7 = 0;
               UPDATE run_images SET importance = NULL WHERE image_id % 5 = 0;`);
    for (const order of [...REVIEW_ORDERS, 'estimate' as const]) {
      const r = ReviewSession.open(s.db, { annotator: 'alice', order, firstWindow: 3, restSlice: 4 }).start();
      const whole = loadQueue(s.db, run(), order === 'estimate' ? 'margin' : order).map((i) => i.imageId);
      let steps = 0;
      while (!r.loaded) {
        const before = r.items.map((i) => i.imageId);
        expect(r.background()?.step).toBe('read-rest');
        r.runBackground();
        steps++;
        // The part read only grows at its end (margin order; the others are sorted in with the last slice).
        expect(r.items.slice(0, before.length).map((i) => i.imageId), `${order}, step ${steps}`).toEqual(before);
      }
      expect(steps, order).toBeGreaterThan(order === 'margin' || order === 'estimate' ? 6 : 7);
      expect(r.items.map((i) => i.imageId), order).toEqual(whole);
      expect(r.position).toEqual({ index: 1, of: 30 });
      r.close();
    }
  });

  it('decides keys while the rest is read: the items shown follow the queue, and the estimates equal a load in one go', () => {
    const order = loadQueue(s.db, run(), 'margin').map((i) => i.imageId);
    const r = ReviewSession.open(s.db, { annotator: 'alice', order: 'margin', firstWindow: 3, restSlice: 2 }).start();
    const shown: number[] = [];
    for (let k = 0; k < 8; k++) {
      shown.push(r.current!.imageId);
      r.decide(k % 2 ? 'rejected' : 'accepted');
      r.runBackground(); // one slice between two keys
    }
    // 3 + 8 x 2 items read: the keys never needed the whole queue.
    expect(r.loaded).toBe(false);
    expect(r.items).toHaveLength(19);
    expect(shown).toEqual(order.slice(0, 8));
    expect(r.current?.imageId).toBe(order[8]);
    expect(r.stats()).toMatchObject({ reviewed: 8, accepted: 4, rejected: 4, sessionDecisions: 8 });
    // The rest of the slices, with one more key between two of them.
    while (!r.loaded) {
      expect(r.background()).toEqual({ step: 'read-rest', waitMs: 0 });
      r.runBackground();
      if (shown.length === 8) {
        shown.push(r.current!.imageId);
        r.decide('accepted');
      }
    }
    expect(shown).toEqual(order.slice(0, 9));
    expect(r.items.map((i) => i.imageId)).toEqual(order);
    // Then the estimates, in steps that change nothing shown, and the first refit.
    while (!r.learner.loaded) {
      // Not on the key path: they wait for a pause in the keys (REFIT_PAUSE_MS), as refits do.
      expect(r.background()).toEqual({ step: 'load-estimates', waitMs: REFIT_PAUSE_MS });
      expect(r.runBackground()).toBeNull();
    }
    expect(r.learner.ready).toBe(false);
    expect(r.background()).toEqual({ step: 'refit', waitMs: REFIT_PAUSE_MS });
    expect(r.runBackground()?.shown?.estimate?.fittedOn).toBe(9);
    expect(r.background()).toBeNull();
    expect(r.position).toEqual({ index: 10, of: 30 });
    expect(decisionsOfRun(s.db, s.runId)).toHaveLength(9);
    // The estimates read in steps are those of loadEstimates, refitted on the same decisions.
    const whole = loadEstimates(s.db, run());
    refit(s.db, whole);
    expect(whole.items.map((i) => i.imageId)).toEqual(order);
    for (const it of r.items) expect(r.estimateOf(it), `image ${it.imageId}`).toBe(whole.model.estimate(whole.index.get(it.imageId)!));
    r.close();
  });

  it('the App handles keys between slices, and a filter waits for the rest with a status line', async () => {
    const r = ReviewSession.open(s.db, { annotator: 'alice', order: 'margin', firstWindow: 3, restSlice: 2 }).start();
    const order = loadQueue(s.db, run(), 'margin');
    // The background steps run only when the test lets them (one slice at a time).
    let allowed = 0;
    const step = r.runBackground.bind(r);
    r.runBackground = () => (allowed > 0 ? (allowed--, step()) : null);
    const app = render(<App session={r} colorMode="none" />);
    const frame = () => stripAnsi(app.lastFrame() ?? '');
    const showing = (k: number) => () => frame().includes(`${order[k]!.path} (train)`);
    try {
      await until(showing(0), 'the first item', app.lastFrame);
      allowed = 1;
      await until(() => r.items.length === 5, 'one slice');
      app.stdin.write('a');
      await until(showing(1), 'the second item after a key', app.lastFrame);
      allowed = 2;
      await until(() => r.items.length === 9, 'two more slices');
      for (let k = 2; k <= 5; k++) {
        app.stdin.write(k % 2 ? 'r' : 'a');
        await until(showing(k), `item ${k + 1} after a key`, app.lastFrame);
      }
      // Items 4-6 came from the slices; every key was decided, the rest is still unread.
      expect(r.loaded).toBe(false);
      expect(decisionsOfRun(s.db, s.runId).filter((d) => d.action !== 'skipped')).toHaveLength(5);
      // A filter needs the whole queue: it waits for it, saying so, then applies.
      const cls = order[5]!.proposed;
      app.stdin.write('/');
      app.stdin.write(String(s.taxonomy.indexOf(cls) + 1));
      await until(() => frame().includes('reading the rest of the queue'), 'the waiting status line', app.lastFrame);
      await until(() => { const f = r.filter; return !!f && f.by !== 'flag' && f.cls === cls; }, 'the filter applied', app.lastFrame);
      expect(frame()).not.toContain('reading the rest of the queue');
      expect(r.loaded).toBe(true);
      expect(r.items.map((i) => i.imageId)).toEqual(order.map((i) => i.imageId));
      allowed = Infinity;
      await until(() => r.learner.ready, 'the estimates read and fitted');
    } finally {
      cleanup();
      r.close();
    }
  });
});
