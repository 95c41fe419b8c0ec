import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../src/review/terminal/App.js';
import { ReviewSession } from '../src/review/session/session.js';
import { decisionsOfRun } from '../src/review/domain/decisions.js';
import { useStore, useTempDir } from './helpers.js';
import { seedReviewDb } from './review-helpers.js';

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
const RIGHT = '\x1b[C';
const LEFT = '\x1b[D';

/** Waits until the last frame satisfies `ok` (renders and face drawing are asynchronous). */
async function until(frame: () => string | undefined, ok: (f: string) => boolean, what: string): Promise<string> {
  const start = Date.now();
  while (Date.now() - start < 20_000) {
    const f = stripAnsi(frame() ?? '');
    if (ok(f)) return f;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}; last frame:\n${stripAnsi(frame() ?? '')}`);
}

describe('review App (ink-testing-library)', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => seedReviewDb(join(dir, 'r.db'), { images: 4 }));
  let session: ReviewSession;

  const mount = (opts: { annotator?: string } = {}) => {
    session = ReviewSession.open(s.db, { annotator: opts.annotator ?? 'alice', runId: s.runId }).start();
    const app = render(<App session={session} colorMode="truecolor" />);
    const press = async (key: string, expect: (f: string) => boolean, what: string) => {
      app.stdin.write(key);
      return until(app.lastFrame, expect, what);
    };
    return { app, press };
  };
  const showing = (k: number) => (f: string) => f.includes(`${s.images[k]!.path} (train)`) && f.includes('▀');

  afterEach(() => {
    cleanup();
    session?.close();
  });

  it('renders an item: face, labels, margin, bars for every class, legend, progress', async () => {
    const { app } = mount();
    const f = await until(app.lastFrame, showing(0), 'the first face');
    const first = s.images[0]!;
    expect(f).toContain(`given    ${first.given}`);
    expect(f).toContain(`proposed ${first.proposed}`);
    expect(f).toMatch(/margin 1\.00 · importance \d\.\d\d/);
    for (const [i, c] of s.taxonomy.entries()) expect(f).toMatch(new RegExp(`${i + 1} ${c}\\s+[█▏▎▍▌▋▊▉ ]+ \\d\\.\\d\\d`));
    expect(f).toContain('a/⏎ accept');
    expect(f).toContain('q quit');
    expect(f).toContain('0/4 reviewed');
    expect(f).toContain('item 1/4');
    // The face: 24-bit colour half-blocks in the raw frame.
    expect(app.lastFrame()).toMatch(/\x1b\[38;2;\d+;\d+;\d+m\x1b\[48;2;\d+;\d+;\d+m▀/);
    // Fits the default 100-column test terminal.
    for (const line of f.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it("shows an image's data-quality flag (images.quality, e.g. AffectNet's no-face) beside its path", async () => {
    s.db.prepare(`UPDATE images SET quality = 'no-face' WHERE id = ?`).run(s.images[1]!.imageId);
    const { app, press } = mount();
    const f0 = await until(app.lastFrame, showing(0), 'item 0');
    expect(f0).not.toContain('[no-face]');
    const f1 = await press('n', showing(1), 'item 1');
    expect(f1).toContain(`${s.images[1]!.path} (train) [no-face]`);
  });

  it('a and Enter accept, r rejects, digits set a label; each is stored and the next item shown', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    await press('a', showing(1), 'item 1 after a');
    await press('\r', showing(2), 'item 2 after Enter');
    await press('r', showing(3), 'item 3 after r');
    const f = await press('2', (x) => x.includes('End of the queue'), 'end of queue after 2');
    expect(f).toContain('all 4 items are reviewed');
    expect(f).toContain('4/4 reviewed · 2 accepted · 1 rejected · 1 manual');
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((r) => [r.image_id, r.action, r.previous_label, r.new_label, r.annotator])).toEqual([
      [s.images[0]!.imageId, 'accepted', s.images[0]!.given, s.images[0]!.proposed, 'alice'],
      [s.images[1]!.imageId, 'accepted', s.images[1]!.given, s.images[1]!.proposed, 'alice'],
      [s.images[2]!.imageId, 'rejected', s.images[2]!.given, s.images[2]!.given, 'alice'],
      [s.images[3]!.imageId, 'manual', s.images[3]!.given, 'disgust', 'alice'],
    ]);
  });

  it('keys that arrive in one chunk are each handled, in order (a held key, a fast typist, a slow link)', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    // One write = one chunk: Ink hands it over as the input string 'aa'.
    await press('aa', showing(2), 'item 2 after "aa"');
    await press('r' + RIGHT, (x) => x.includes('End of the queue') || showing(3)(x), 'r then an arrow');
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.map((r) => [r.image_id, r.action])).toEqual([
      [s.images[0]!.imageId, 'accepted'],
      [s.images[1]!.imageId, 'accepted'],
      [s.images[2]!.imageId, 'rejected'],
    ]);
  });

  it('s skips (recorded, not a decision) and skipped items come back at the end', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    await press('s', showing(1), 'item 1 after skip');
    await press('a', showing(2), 'item 2');
    await press('a', showing(3), 'item 3');
    let f = await press('a', (x) => x.includes('End of the queue'), 'end');
    expect(f).toContain('1 item(s) you skipped are still undecided');
    expect(f).toContain('3/4 reviewed');
    f = await press('n', showing(0), 'the skipped item again');
    expect(f).toContain('undecided');
    expect(decisionsOfRun(s.db, s.runId)[0]!.action).toBe('skipped');
  });

  it('u undoes the last decision, shows that item again and records the undo', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    await press('a', showing(1), 'item 1');
    let f = await press('u', (x) => showing(0)(x) && x.includes('undid accepted'), 'item 0 again after undo');
    expect(f).toContain('0/4 reviewed');
    expect(f).toContain('undecided');
    const rows = decisionsOfRun(s.db, s.runId);
    expect(rows.at(-1)).toMatchObject({ action: 'undo', undoes: rows[0]!.id, previous_label: s.images[0]!.proposed, new_label: s.images[0]!.given });
    f = await press('r', showing(1), 'item 1 after re-deciding');
    expect(f).toContain('1/4 reviewed · 0 accepted · 1 rejected');
    // Nothing left to undo after undoing everything.
    await press('u', showing(0), 'undo the reject');
    await press('u', (x) => x.includes('nothing to undo'), 'nothing to undo');
  });

  it('←/→ and p/n move through items, decided ones too, and a decision can be changed', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    await press('a', showing(1), 'item 1');
    let f = await press(LEFT, showing(0), 'back to item 0');
    expect(f).toMatch(/decision: accepted → \w+ by alice/);
    f = await press(LEFT, (x) => x.includes('first item of the queue'), 'first item message');
    await press(RIGHT, showing(1), 'item 1 with →');
    await press('n', showing(2), 'item 2 with n');
    await press('p', showing(1), 'item 1 with p');
    await press('p', showing(0), 'item 0 with p');
    f = await press('r', showing(1), 'next undecided after changing item 0');
    expect(f).toContain('1/4 reviewed · 0 accepted · 1 rejected');
  });

  it('/ filters by given or proposed class, and 0 clears the filter', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    const target = s.images[2]!;
    const k = s.taxonomy.indexOf(target.given) + 1;
    let f = await press('/', (x) => x.includes('given or proposed label is'), 'filter prompt');
    await press('g', (x) => x.includes('whose given label is'), 'given-only prompt');
    f = await press(String(k), (x) => x.includes(`filter: given ${target.given}`), 'filtered view');
    const matching = s.images.filter((i) => i.given === target.given);
    expect(f).toContain(`item 1/${matching.length}`);
    expect(f).toContain(matching[0]!.path);
    await press('/', (x) => x.includes('given or proposed label is'), 'filter prompt');
    f = await press('0', (x) => x.includes('filter cleared'), 'filter cleared');
    expect(f).toContain('item 1/4');
    // A filter on the proposed class.
    await press('/', (x) => x.includes('given or proposed label is'), 'prompt');
    await press('p', (x) => x.includes('whose proposed label is'), 'proposed-only prompt');
    const p = s.images[0]!.proposed!;
    f = await press(String(s.taxonomy.indexOf(p) + 1), (x) => x.includes(`filter: proposed ${p}`), 'proposed filter');
    expect(f).toContain(`proposed ${p}`);
    // Esc leaves the prompt without changing the filter.
    await press('/', (x) => x.includes('given or proposed label is'), 'prompt');
    f = await press('\x1b', (x) => !x.includes('given or proposed label is'), 'prompt closed');
    expect(f).toContain(`filter: proposed ${p}`);
  });

  it('? shows the help and any key closes it; q quits', async () => {
    const { app, press } = mount();
    await until(app.lastFrame, showing(0), 'item 0');
    let f = await press('?', (x) => x.includes('Each key acts at once'), 'help page');
    expect(f).toContain('set the label by hand: 1 anger, 2 disgust');
    expect(f).toContain('leased to one session');
    f = await press('x', showing(0), 'help closed');
    app.stdin.write('q');
    // Quitting unmounts: nothing more is drawn, and no decision was written by q.
    await new Promise((r) => setTimeout(r, 20));
    expect(decisionsOfRun(s.db, s.runId)).toHaveLength(0);
  });

  it('an empty queue says so instead of a blank screen', async () => {
    s.db.close();
    Object.assign(s, seedReviewDb(join(t.dir, 'e.db'), { images: 3, proposals: 0 })); // another database in the test's folder
    const { app } = mount();
    const f = await until(app.lastFrame, (x) => x.includes('Nothing to review'), 'empty-queue message');
    expect(f).toContain('proposes no relabels');
    expect(f).toContain('0/0 reviewed');
  });

  it('with contempt in the taxonomy, 8 sets contempt; 9 is refused with a message', async () => {
    s.db.close();
    Object.assign(s, seedReviewDb(join(t.dir, 'c.db'), { images: 2, contempt: true })); // another database in the test's folder
    const { app, press } = mount();
    let f = await until(app.lastFrame, showing(0), 'item 0');
    expect(f).toMatch(/8 contempt\s/);
    expect(f).toContain('1-8 set label');
    f = await press('9', (x) => x.includes('no class 9: this dataset has 8'), 'refusal');
    await press('8', showing(1), 'item 1');
    expect(decisionsOfRun(s.db, s.runId).map((r) => [r.action, r.new_label])).toEqual([['manual', 'contempt']]);
  });

  it('draws in 256 colours and without colour too', async () => {
    session = ReviewSession.open(s.db, { annotator: 'bob', runId: s.runId }).start();
    const grey = render(<App session={session} colorMode="256" />);
    await until(grey.lastFrame, (x) => x.includes('▀'), '256-colour face');
    expect(grey.lastFrame()).toMatch(/\x1b\[38;5;\d+m\x1b\[48;5;\d+m▀/);
    grey.unmount();
    const mono = render(<App session={session} colorMode="none" />);
    const f = await until(mono.lastFrame, (x) => x.includes(s.images[0]!.path) && /[@%#*+=]/.test(x), 'character face');
    expect(f).not.toContain('▀');
  });
});
