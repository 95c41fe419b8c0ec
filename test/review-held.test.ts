import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type DB } from '../src/store/db.js';
import { ReviewSession } from '../src/review/session/session.js';
import { useStore, useTempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

const t = useTempDir();
const s = useStore(t, (dir) => seedReviewDb(join(dir, 'r.db'), { images: 40 }));
const extra: DB[] = [];
afterEach(() => {
  for (const db of extra.splice(0)) db.close();
});

describe("the review's 'held by others' count", () => {
  it('is the number of items other live sessions hold, from the first screen on, before any refresh', () => {
    // Four annotators, each with a connection of their own, opened before any of them starts (as at 9:00).
    const sessions = ['ana', 'ben', 'cy', 'dee'].map((annotator) => {
      const db = openStore(join(t.dir, 'r.db'));
      extra.push(db);
      return ReviewSession.open(db, { annotator });
    });
    const heldByOthersInDb = (me: ReviewSession): number =>
      (
        s.db
          .prepare(`SELECT count(*) AS n FROM claims WHERE run_id = ? AND session_id != ? AND expires_at > ?`)
          .get(s.runId, me.who.sessionId, Date.now()) as { n: number }
      ).n;
    for (const r of sessions) r.start();
    // They work in turns, no tick() in between: every figure on screen must match the claims table.
    for (let round = 0; round < 8; round++) {
      for (const [k, r] of sessions.entries()) {
        if (!r.current) continue;
        if (k % 2 === 0) r.decide('accepted');
        else r.decide('rejected');
        for (const other of sessions) {
          const shown = other.stats().heldByOthers;
          expect(shown).toBeLessThanOrEqual(sessions.length - 1);
          expect(shown).toBe(heldByOthersInDb(other));
        }
      }
    }
    // No image decided twice.
    const twice = s.db
      .prepare(`SELECT image_id FROM decisions WHERE action IN ('accepted','rejected') GROUP BY image_id HAVING count(*) > 1`)
      .all();
    expect(twice).toEqual([]);
  });
});
