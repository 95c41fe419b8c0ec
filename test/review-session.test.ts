import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { openStore } from '../src/store/db.js';
import { FerCleanError } from '../src/errors.js';
import { ReviewSession } from '../src/review/session/session.js';
import { loadQueue } from '../src/review/domain/proposals.js';
import { resolveRun } from '../src/store/runs.js';
import { claimImage, claimedByOthers } from '../src/review/domain/claims.js';
import { decisionsOfRun, decisionsInForce, recordDecision } from '../src/review/domain/decisions.js';
import { pixelsToLines, detectColorMode, grey256, renderFace } from '../src/review/terminal/face.js';
import { FaceOverlay } from '../src/review/terminal/overlay.js';
import { fixture, useStore, useTempDir } from './helpers.js';
import { seedReviewDb, type Seeded } from './review-helpers.js';

/** Final label of every image of the run, read the way export does: effective decision, else the given label. */
function finalLabels(s: Seeded): Map<number, string> {
  const rows = s.db
    .prepare(
      `SELECT ri.image_id, coalesce(e.new_label, l.given) AS label FROM run_images ri JOIN labels l ON l.image_id = ri.image_id
       LEFT JOIN effective_decisions e ON e.image_id = ri.image_id WHERE ri.run_id = ?`,
    )
    .all(s.runId) as { image_id: number; label: string }[];
  return new Map(rows.map((r) => [r.image_id, r.label]));
}

describe('review library', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedReviewDb(join(dir, 'r.db'), { images: 8, proposals: 6 }));

  it('queues the run\'s proposals in margin, importance or class order', () => {
    const run = resolveRun(s.db);
    expect(run.id).toBe(s.runId);
    const byMargin = loadQueue(s.db, run, 'margin');
    expect(byMargin.map((i) => i.imageId)).toEqual(s.images.slice(0, 6).map((i) => i.imageId));
    const byImportance = loadQueue(s.db, run, 'importance');
    const imps = byImportance.map((i) => i.importance!);
    expect(imps).toEqual([...imps].sort((a, b) => a - b));
    const byClass = loadQueue(s.db, run, 'class').map((i) => s.taxonomy.indexOf(i.given));
    expect(byClass).toEqual([...byClass].sort((a, b) => a - b));
    expect(byImportance).toHaveLength(6);
  });

  it('explains a missing run, an unfinished run and an empty database', () => {
    expect(() => resolveRun(s.db, { runId: 99 })).toThrow(/no run with id 99 \(runs in this database: 1\)/);
    s.db.prepare(`UPDATE runs SET status = 'running'`).run();
    expect(() => resolveRun(s.db, { runId: s.runId })).toThrow(/status 'running'/);
    expect(() => ReviewSession.open(s.db, { annotator: 'a' })).toThrow(/has no finished run to review/);
    const empty = openStore(join(t.dir, 'empty.db'));
    try {
      expect(() => ReviewSession.open(empty, { annotator: 'a' })).toThrow(FerCleanError);
      expect(() => ReviewSession.open(empty, { annotator: 'a' })).toThrow(/holds no dataset yet/);
      expect(() => ReviewSession.open(empty, { annotator: 'a', runId: 1 })).toThrow(/runs in this database: none/);
    } finally {
      empty.close();
    }
  });

  it('writes accepted / rejected / manual / skipped rows with the labels export reads', () => {
    const r = ReviewSession.open(s.db, { annotator: 'alice' }).start();
    const [i0, i1, i2, i3] = s.images;
    expect(r.current?.imageId).toBe(i0!.imageId);
    r.decide('accepted');
    r.decide('rejected');
    r.decide('manual', 'surprise');
    r.skip();
    expect(r.current?.imageId).toBe(s.images[4]!.imageId);
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((x) => [x.image_id, x.action, x.previous_label, x.new_label, x.annotator, x.undoes])).toEqual([
      [i0!.imageId, 'accepted', i0!.given, i0!.proposed, 'alice', null],
      [i1!.imageId, 'rejected', i1!.given, i1!.given, 'alice', null],
      [i2!.imageId, 'manual', i2!.given, 'surprise', 'alice', null],
      [i3!.imageId, 'skipped', i3!.given, i3!.given, 'alice', null],
    ]);
    for (const x of rows) expect(Date.parse(x.decided_at)).not.toBeNaN();
    const eff = decisionsInForce(s.db, { runId: s.runId });
    expect([...eff.keys()].sort()).toEqual([i0!.imageId, i1!.imageId, i2!.imageId].sort());
    expect(r.stats()).toMatchObject({ total: 6, reviewed: 3, accepted: 1, rejected: 1, manual: 1, sessionDecisions: 3 });
    // Final labels: accepted → proposal, rejected → original, manual → chosen, skipped and untouched → original.
    const final = finalLabels(s);
    expect(final.get(i0!.imageId)).toBe(i0!.proposed);
    expect(final.get(i1!.imageId)).toBe(i1!.given);
    expect(final.get(i2!.imageId)).toBe('surprise');
    expect(final.get(i3!.imageId)).toBe(i3!.given);
    expect(final.get(s.images[7]!.imageId)).toBe(s.images[7]!.given);
    r.close();
  });

  it('undo is a row naming the undone one; undos stack back through skips and decisions', () => {
    const r = ReviewSession.open(s.db, { annotator: 'alice' }).start();
    const [i0, i1] = s.images;
    r.decide('accepted');
    r.skip();
    r.undo();
    expect(r.current?.imageId).toBe(i1!.imageId);
    r.undo();
    expect(r.current?.imageId).toBe(i0!.imageId);
    const nothing = r.undo();
    expect([nothing.status, 'row' in nothing]).toEqual(['nothing to undo', false]);
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((x) => [x.action, x.undoes, x.previous_label, x.new_label])).toEqual([
      ['accepted', null, i0!.given, i0!.proposed],
      ['skipped', null, i1!.given, i1!.given],
      ['undo', rows[1]!.id, i1!.given, i1!.given],
      ['undo', rows[0]!.id, i0!.proposed, i0!.given],
    ]);
    expect(decisionsInForce(s.db, { runId: s.runId }).size).toBe(0);
    // Re-deciding after an undo, then changing the decision: previous_label follows the label in force.
    r.decide('manual', 'fear');
    r.move(-1);
    expect(r.current?.imageId).toBe(i0!.imageId);
    r.decide('rejected');
    const last = decisionsOfRun(s.db, s.runId).at(-1)!;
    expect([last.action, last.previous_label, last.new_label]).toEqual(['rejected', 'fear', i0!.given]);
    expect(finalLabels(s).get(i0!.imageId)).toBe(i0!.given);
    // Undoing the change brings the earlier decision back into force.
    r.undo();
    expect(decisionsInForce(s.db, { runId: s.runId }).get(i0!.imageId)?.label).toBe('fear');
    r.close();
  });

  it('resumes at the first undecided item when reopened', () => {
    const a = ReviewSession.open(s.db, { annotator: 'alice' }).start();
    a.decide('accepted');
    a.decide('accepted');
    a.skip();
    a.close();
    const b = ReviewSession.open(s.db, { annotator: 'alice' }).start();
    expect(b.current?.imageId).toBe(s.images[2]!.imageId);
    expect(b.stats().reviewed).toBe(2);
    b.close();
  });

  it('two sessions at once never get the same image', () => {
    const a = ReviewSession.open(s.db, { annotator: 'alice' }).start();
    const db2 = openStore(join(t.dir, 'r.db'));
    try {
      const b = ReviewSession.open(db2, { annotator: 'bob' }).start();
      const seenA: number[] = [];
      const seenB: number[] = [];
      for (let k = 0; k < 3; k++) {
        if (a.current) seenA.push(a.current.imageId);
        a.decide('accepted');
        if (b.current) seenB.push(b.current.imageId);
        b.decide('rejected');
      }
      expect(seenA.filter((x) => seenB.includes(x))).toEqual([]);
      expect(new Set([...seenA, ...seenB]).size).toBe(6);
      expect(a.current).toBeUndefined();
      expect(b.current).toBeUndefined();
      // Each sees the other's decisions after a tick (progress counts all annotators).
      expect(a.stats().reviewed).toBeLessThan(6);
      a.tick();
      expect(a.stats()).toMatchObject({ reviewed: 6, accepted: 3, rejected: 3 });
      const rows = decisionsOfRun(s.db, s.runId);
      expect(rows).toHaveLength(6);
      expect(new Set(rows.map((x) => x.image_id)).size).toBe(6);
      // Moving with the arrows skips what the other session holds too.
      a.move(-1);
      b.tick();
      const held = a.current!.imageId;
      b.move(-1);
      expect(b.current?.imageId).not.toBe(held);
      b.close();
    } finally {
      db2.close();
    }
    a.close();
  });

  it('a lease expires when its session dies, and a lost lease refuses the decision', () => {
    let now = 1_000_000;
    const clock = () => now;
    const a = ReviewSession.open(s.db, { annotator: 'alice', now: clock }).start();
    const first = a.current!.imageId;
    // bob starts while alice holds the first item: he gets the second.
    const b1 = ReviewSession.open(s.db, { annotator: 'bob', now: clock }).start();
    expect(b1.current?.imageId).toBe(s.images[1]!.imageId);
    expect(claimedByOthers(s.db, s.runId, b1.who.sessionId, now).get(first)).toBe('alice');
    b1.close();
    // alice's session dies (no renewal, no release); 3 minutes later the item is free again.
    now += 3 * 60_000;
    const b2 = ReviewSession.open(s.db, { annotator: 'bob', now: clock }).start();
    expect(b2.current?.imageId).toBe(first);
    // alice comes back to life and presses a: refused, nothing written for her.
    const refused = a.decide('accepted');
    expect(refused.row).toBeUndefined();
    expect(refused.status).toMatch(/being reviewed by bob now/);
    expect(decisionsOfRun(s.db, s.runId)).toHaveLength(0);
    expect(a.current?.imageId).not.toBe(first);
    // Renewal keeps a lease alive past its first term.
    now += 90_000;
    b2.tick();
    now += 90_000;
    expect(claimImage(s.db, a.who, first, now).ok).toBe(false);
    b2.decide('accepted');
    expect(decisionsOfRun(s.db, s.runId).map((x) => x.annotator)).toEqual(['bob']);
    a.close();
    b2.close();
  });

  it('recordDecision claims in an IMMEDIATE transaction: a second session cannot decide a held item', () => {
    const db2 = openStore(join(t.dir, 'r.db'));
    try {
      const who1 = { runId: s.runId, sessionId: 's1', annotator: 'alice' };
      const who2 = { runId: s.runId, sessionId: 's2', annotator: 'bob' };
      const item = { imageId: s.images[0]!.imageId, given: s.images[0]!.given, proposed: s.images[0]!.proposed! };
      expect(claimImage(s.db, who1, item.imageId).ok).toBe(true);
      expect(() => recordDecision(db2, who2, item, 'accepted')).toThrow(/being reviewed by alice/);
      expect(recordDecision(s.db, who1, item, 'accepted').new_label).toBe(item.proposed);
    } finally {
      db2.close();
    }
  });

  it('filters by given or proposed class', () => {
    const r = ReviewSession.open(s.db, { annotator: 'alice' }).start();
    const cls = s.images[3]!.given;
    r.setFilter({ by: 'given', cls });
    const want = s.images.slice(0, 6).filter((i) => i.given === cls).map((i) => i.imageId);
    expect(r.position.of).toBe(want.length);
    expect(r.current?.imageId).toBe(want[0]);
    r.setFilter({ by: 'either', cls });
    const either = s.images.slice(0, 6).filter((i) => i.given === cls || i.proposed === cls);
    expect(r.position.of).toBe(either.length);
    r.setFilter(null);
    expect(r.position.of).toBe(6);
    r.close();
  });
});

describe('face drawing', () => {
  it('turns pixels into half-blocks (truecolor, 256 greys) or characters', () => {
    // 2 x 2 pixels, grey: top row black/white, bottom row white/black.
    const px = Uint8Array.from([0, 255, 255, 0]);
    expect(pixelsToLines(px, 2, 1, 1, 'truecolor')).toEqual([
      '\x1b[38;2;0;0;0;48;2;255;255;255m▀\x1b[38;2;255;255;255;48;2;0;0;0m▀\x1b[0m',
    ]);
    expect(pixelsToLines(px, 2, 1, 1, '256')).toEqual(['\x1b[38;5;16;48;5;231m▀\x1b[38;5;231;48;5;16m▀\x1b[0m']);
    expect(pixelsToLines(Uint8Array.from([0, 255, 0, 255]), 2, 1, 1, 'none')).toEqual([' @']);
    expect(grey256(128)).toBe(244);
  });

  it('draws a real fixture face at the size asked', async () => {
    const file = fixture('ferplus', 'images', 'train', 'fer0014103.png');
    const lines = await renderFace(file, 36, 18, 'truecolor');
    expect(lines).toHaveLength(18);
    for (const l of lines) expect(l.replace(/\x1b\[[0-9;]*m/g, '')).toBe('▀'.repeat(36));
    await expect(renderFace(join(fixture('ferplus'), 'nope.png'), 10, 5, '256')).rejects.toThrow(/nope\.png: cannot read image/);
  });

  it('draws only the face box when the image has one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fer-box-'));
    try {
      // a white square at (30, 10) in a black canvas: drawn with its box, every cell is white
      const canvas = join(dir, 'canvas.png');
      await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 0, g: 0, b: 0 } } })
        .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: { r: 255, g: 255, b: 255 } } }, left: 30, top: 10 }])
        .png()
        .toFile(canvas);
      const boxed = await renderFace(canvas, 4, 2, 'none', { x: 30, y: 10, w: 20, h: 20 });
      expect(boxed).toEqual(['@@@@', '@@@@']);
      const whole = await renderFace(canvas, 8, 3, 'none');
      expect(whole.join('')).toContain(' ');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('picks the colour mode from the terminal environment', () => {
    expect(detectColorMode({ COLORTERM: 'truecolor', TERM: 'xterm-256color' })).toBe('truecolor');
    expect(detectColorMode({ TERM: 'xterm-256color' })).toBe('256');
    expect(detectColorMode({ TERM: 'screen' })).toBe('none');
    expect(detectColorMode({ TERM: 'dumb', COLORTERM: 'truecolor' })).toBe('none');
    expect(detectColorMode({ NO_COLOR: '1', COLORTERM: 'truecolor' })).toBe('none');
    expect(detectColorMode({ FORCE_COLOR: '3' })).toBe('truecolor');
  });

  it('the overlay paints the face at its place after each write of Ink, and erases it when hidden', async () => {
    const writes: string[] = [];
    const out = { write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
    const overlay = new FaceOverlay(out);
    const tick = () => new Promise((r) => setTimeout(r, 0));
    overlay.show(['ab', 'cd'], 1, 0);
    await tick();
    expect(writes).toEqual(['\x1b7\x1b[2;1Hab\x1b[0m\x1b[3;1Hcd\x1b[0m\x1b8']);
    // Ink writes a frame (erasing its lines): the face comes back right after it, once per burst of writes.
    out.write('frame');
    out.write('more');
    await tick();
    expect(writes.slice(1)).toEqual(['frame', 'more', writes[0]]);
    // Hidden (help page): its cells are blanked at once, before Ink draws there; no more repaints.
    overlay.show(null, 1, 0);
    expect(writes.at(-1)).toBe('\x1b7\x1b[0m\x1b[2;1H  \x1b[3;1H  \x1b8');
    out.write('help');
    await tick();
    expect(writes.at(-1)).toBe('help');
    overlay.dispose();
    expect(out.write('x')).toBe(true);
    expect(writes.at(-1)).toBe('x');
  });
});
