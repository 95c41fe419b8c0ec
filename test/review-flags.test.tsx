/**
 * Issue 19: review filtered to a quality flag (the session's filter page, `queue --flag KIND`). The flags are stored
 * as `fer-clean quality` stores them (quality_checks + quality_flags; the checks themselves are tested on planted
 * images in test/quality.test.ts), on the FER+ fixture's real faces.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../src/review/terminal/App.js';
import { ReviewSession } from '../src/review/session/session.js';
import { filteredView, matchesFilter, describeFilter, type Filter } from '../src/review/domain/order.js';
import { handleKey, initialKeyState } from '../src/review/terminal/keys.js';
import { filterLines } from '../src/review/terminal/help.js';
import { nextItems } from '../src/review/verbs.js';
import type { QueueItem } from '../src/review/domain/proposals.js';
import { cliRunner, useStore, useTempDir } from './helpers.js';
import { seedReviewDb, type Seeded } from './review-helpers.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

/** Stores a quality check of the seeded dataset: `dark` on images 1 and 3, `outlier` on image 2. */
function storeFlags(s: Seeded): void {
  s.db.prepare(`INSERT INTO quality_checks (dataset_id, backbone, options, images, seconds, checked_at) VALUES (?, NULL, '{}', ?, 0.1, 'now')`).run(
    s.datasetId,
    s.images.length,
  );
  const flag = s.db.prepare(`INSERT INTO quality_flags (image_id, flag, score, detail) VALUES (?, ?, ?, ?)`);
  flag.run(s.images[1]!.imageId, 'dark', 0.08, 'mean brightness 0.08');
  flag.run(s.images[3]!.imageId, 'dark', 0.1, 'mean brightness 0.10');
  flag.run(s.images[2]!.imageId, 'outlier', 0.5, 'distance 0.50 to the nearest class');
}

describe('the quality-flag filter (pure)', () => {
  const item = (imageId: number): QueueItem => ({ imageId, given: 'anger', proposed: 'fear' }) as QueueItem;
  const items = [item(1), item(2), item(3), item(4)];
  const f: Filter = { by: 'flag', flag: 'dark', images: new Set([2, 4]) };

  it('lets through exactly the flagged images and says which flag', () => {
    expect(items.map((it) => matchesFilter(it, f))).toEqual([false, true, false, true]);
    expect(filteredView(items, f)).toEqual([1, 3]);
    expect(describeFilter(f)).toBe('quality flag dark');
  });

  it('/ f then a number picks the flag (QUALITY_FLAGS order); 0 still clears, Esc leaves', () => {
    const tax = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
    let s = handleKey(initialKeyState(tax), { input: '/' }).state;
    s = handleKey(s, { input: 'f' }).state;
    expect(s).toMatchObject({ mode: 'filter', filterBy: 'flag' });
    expect(handleKey(s, { input: '3' })).toMatchObject({ state: { mode: 'main' }, effect: { kind: 'flag-filter', flag: 'dark' } });
    expect(handleKey(s, { input: '6' }).effect).toEqual({ kind: 'flag-filter', flag: 'low-information' });
    expect(handleKey(s, { input: '7' })).toMatchObject({ state: { mode: 'filter' }, effect: { kind: 'redraw' } });
    expect(handleKey(s, { input: '0' }).effect).toEqual({ kind: 'filter', filter: null });
    expect(handleKey(s, { input: 'g' }).state.filterBy).toBe('given');
    expect(handleKey(s, { input: '', escape: true })).toMatchObject({ state: { mode: 'main' }, effect: { kind: 'redraw' } });
    expect(filterLines(tax, 'flag')).toEqual(expect.arrayContaining(['  1  non-face', '  3  dark', '  6  low-information']));
  });
});

describe('review filtered to a quality flag (real SQLite, fixture faces)', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => ({ ...seedReviewDb(join(dir, 'r.db'), { images: 5 }), path: join(dir, 'r.db') }));
  let session: ReviewSession | undefined;
  afterEach(() => {
    cleanup();
    session?.close();
    session = undefined;
  });

  it('the session shows only the flagged items; a dataset never checked is refused by name', () => {
    session = ReviewSession.open(s.db, { annotator: 'alice', runId: s.runId }).start();
    expect(() => session!.setFlagFilter('dark')).toThrow(/has no quality check yet: run `fer-clean quality --dataset ferplus-fixture` first/);
    expect(session.filter).toBeNull();
    storeFlags(s);
    const snap = session.setFlagFilter('dark');
    expect(snap.position).toEqual({ index: 1, of: 2 });
    expect(snap.shown?.item.imageId).toBe(s.images[1]!.imageId);
    expect(session.move(1).shown?.item.imageId).toBe(s.images[3]!.imageId);
    expect(describeFilter(snap.filter!)).toBe('quality flag dark');
    expect(() => session!.setFlagFilter('sunburnt')).toThrow(/unknown quality flag 'sunburnt' \(known: non-face, outlier, dark/);
  });

  it('queue --flag KIND lists only those images (and --json says so); an unknown kind is an error', async () => {
    storeFlags(s);
    expect(nextItems(s.db, { runId: s.runId, flag: 'outlier', order: 'margin' }).items.map((i) => i.imageId)).toEqual([s.images[2]!.imageId]);
    const cli = cliRunner({ cwd: () => t.dir, db: () => s.path });
    const r = await cli('queue', '--run', String(s.runId), '--flag', 'dark', '--order', 'margin', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.flag).toBe('dark');
    expect(j.items.map((i: { path: string }) => i.path)).toEqual([s.images[1]!.path, s.images[3]!.path]);
    const plain = await cli('queue', '--run', String(s.runId), '--json');
    expect(JSON.parse(plain.stdout).flag).toBeUndefined();
    const bad = await cli('queue', '--run', String(s.runId), '--flag', 'sunburnt');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown quality flag 'sunburnt'/);
  });

  it('on screen: / f 3 filters to dark images, the header says so; without a check the status line says why', async () => {
    session = ReviewSession.open(s.db, { annotator: 'alice', runId: s.runId }).start();
    const app = render(<App session={session} colorMode="none" />);
    const until = async (ok: (f: string) => boolean, what: string): Promise<string> => {
      const start = Date.now();
      while (Date.now() - start < 20_000) {
        const f = stripAnsi(app.lastFrame() ?? '');
        if (ok(f)) return f;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`timed out waiting for ${what}; last frame:\n${stripAnsi(app.lastFrame() ?? '')}`);
    };
    const press = (key: string, ok: (f: string) => boolean, what: string) => {
      app.stdin.write(key);
      return until(ok, what);
    };
    await until((f) => f.includes(s.images[0]!.path), 'first item');
    await press('/', (f) => f.includes('given or proposed label is'), 'filter page');
    await press('f', (f) => f.includes('carries the quality flag') && f.includes('3  dark'), 'flag page');
    let f = await press('3', (x) => x.includes('has no quality check yet'), 'refusal');
    expect(f).not.toContain('filter: quality flag');
    storeFlags(s);
    await press('/', (x) => x.includes('given or proposed label is'), 'filter page');
    await press('f', (x) => x.includes('carries the quality flag'), 'flag page');
    f = await press('3', (x) => x.includes('filter: quality flag dark'), 'filtered');
    expect(f).toContain('item 1/2');
    expect(f).toContain(s.images[1]!.path);
  });

  it('shows the quality flags of the image beside its path', async () => {
    storeFlags(s);
    s.db.prepare(`INSERT INTO quality_flags (image_id, flag, score, detail) VALUES (?, 'blurry', 0.05, 'detail 0.05')`).run(s.images[1]!.imageId);
    session = ReviewSession.open(s.db, { annotator: 'alice', runId: s.runId }).start();
    const app = render(<App session={session} colorMode="none" />);
    const start = Date.now();
    let f = '';
    while (Date.now() - start < 20_000 && !(f = stripAnsi(app.lastFrame() ?? '')).includes(s.images[0]!.path)) await new Promise((r) => setTimeout(r, 5));
    expect(f).not.toContain('[dark');
    app.stdin.write('n');
    while (Date.now() - start < 20_000 && !(f = stripAnsi(app.lastFrame() ?? '')).includes(s.images[1]!.path)) await new Promise((r) => setTimeout(r, 5));
    expect(f).toContain(`${s.images[1]!.path} (train) [dark, blurry]`);
  });
});
