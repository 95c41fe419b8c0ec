/**
 * Issue 19, the review side: duplicate groups whose labels disagree as review items of their own kind (keep one label
 * for the group, or different faces), on planted copies of real fixture faces found by a real `fer-clean quality`;
 * the pure pieces on plain arrays; the group screen rendered by Ink; the CLI verbs (queue/decide/undo --duplicates).
 */
import { copyFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parse } from 'csv-parse/sync';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, render } from 'ink-testing-library';
import { run } from '../cli/run.js';
import { openStore, type DB } from '../src/store/db.js';
import {
  groupCounts,
  groupItemsOf,
  loadGroupItems,
  nextOpenGroup,
  recordGroupDecision,
  settlementOf,
  undoLastGroupDecision,
  type GroupMember,
  type StandingGroupDecision,
} from '../src/review/domain/groups.js';
import { decisionsInForce } from '../src/review/domain/decisions.js';
import { trustedLabels } from '../src/scn/index.js';
import { GroupSession } from '../src/review/session/groups.js';
import { GroupApp } from '../src/review/terminal/GroupApp.js';
import { handleGroupKey, initialGroupKeyState } from '../src/review/terminal/keys.js';
import { computeGroupLayout, GROUP_FACE_MIN_COLS } from '../src/review/terminal/layout.js';
import { groupLegendEntries } from '../src/review/terminal/help.js';
import { captureIo, fixture, tempDir, useStore, useTempDir } from './helpers.js';

const FAST = ['--epochs', '4', '--relabel-epoch', '2', '--hidden', '32', '--batch', '16'];
// planted copies (copy, original) under the dataset root: two whose labels disagree, one that agrees but leaks
const REENCODED = ['train/happiness/plant-reencoded.jpg', 'train/anger/fer0014103.png'] as const; // anger vs happiness
const COPY = ['train/neutral/plant-copy.png', 'train/disgust/fer0003280.png'] as const; // disgust vs neutral, byte for byte
const BRIGHTENED = ['test/anger/plant-brightened.png', 'train/anger/fer0015783.png'] as const; // same label

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');

let tmp: { dir: string; cleanup: () => void };
let template: string;
let runId: number;

async function cliAt(dbPath: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const io = captureIo(tmp.dir);
  const code = await run([...args, '--db', dbPath], io);
  return { code, stdout: io.stdout.text, stderr: io.stderr.text };
}

beforeAll(async () => {
  tmp = tempDir();
  const data = join(tmp.dir, 'faces');
  cpSync(fixture('imagefolder'), data, { recursive: true });
  const at = (p: string): string => join(data, p);
  await sharp(at(REENCODED[1])).jpeg({ quality: 75 }).toFile(at(REENCODED[0]));
  copyFileSync(at(COPY[1]), at(COPY[0]));
  await sharp(at(BRIGHTENED[1])).linear(1.15, 0).png().toFile(at(BRIGHTENED[0]));
  template = join(tmp.dir, 'template.db');
  for (const args of [['ingest', data, '--name', 'planted'], ['embed', '--dataset', 'planted'], ['quality', '--dataset', 'planted']]) {
    const r = await cliAt(template, ...args);
    expect(r.code, r.stderr).toBe(0);
  }
  const r = await cliAt(template, 'train', '--dataset', 'planted', '--seed', '1', ...FAST);
  expect(r.code, r.stderr).toBe(0);
  runId = Number(r.stdout.trim());
}, 180_000);

afterAll(() => tmp?.cleanup());

// ---------------------------------------------------------------------------------------------------------------
describe('the group queue as pure functions', () => {
  const m = (imageId: number, given: string, label = given, decidedBy: string | null = null): GroupMember => ({
    imageId,
    path: `p${imageId}.png`,
    split: 'train',
    given,
    label,
    decidedBy,
  });
  const standing = (id: number, action: 'keep-label' | 'different-faces', images: number[], label: string | null = null): StandingGroupDecision => ({
    id,
    action,
    label,
    annotator: `a${id}`,
    decidedAt: 'now',
    images: new Set(images),
  });
  const group = (id: number, members: GroupMember[]) => ({ id, kind: 'near' as const, similarity: 0.9, pixel_similarity: 0.95, splits: ['train'], members });

  it('a group is open while its labels in force disagree; kept once they agree (naming the decision that did it)', () => {
    expect(settlementOf([m(1, 'anger'), m(2, 'happiness')], [])).toBeNull();
    const kept = [m(1, 'anger', 'happiness', 'a7'), m(2, 'happiness', 'happiness', 'a7')];
    expect(settlementOf(kept, [standing(7, 'keep-label', [1, 2], 'happiness')])).toEqual({ kind: 'kept', label: 'happiness', by: 'a7', decisionId: 7 });
    // agreeing labels without a group decision (e.g. each relabelled in the proposal review) settle it too
    expect(settlementOf(kept, [])).toEqual({ kind: 'kept', label: 'happiness', by: null, decisionId: null });
  });

  it('different faces settles a group only when the decision covers all its images (a grown group is asked again)', () => {
    const members = [m(1, 'anger'), m(2, 'happiness')];
    expect(settlementOf(members, [standing(3, 'different-faces', [1, 2])])).toEqual({ kind: 'different', by: 'a3', decisionId: 3 });
    expect(settlementOf([...members, m(4, 'fear')], [standing(3, 'different-faces', [1, 2])])).toBeNull();
  });

  it('lists groups whose given or in-force labels disagree or that a decision covers; the next open one wraps round', () => {
    const groups = [
      group(10, [m(1, 'anger'), m(2, 'happiness')]), // given disagree
      group(11, [m(3, 'sadness'), m(4, 'sadness')]), // agree: not an item
      group(12, [m(5, 'fear'), m(6, 'fear', 'surprise', 'bob')]), // relabelled one copy: disagree in force
      group(13, [m(7, 'anger'), m(8, 'neutral')]),
    ];
    const items = groupItemsOf(groups, [standing(1, 'different-faces', [7, 8])]);
    expect(items.map((g) => g.groupId)).toEqual([10, 12, 13]);
    expect(items.map((g) => g.settled?.kind ?? 'open')).toEqual(['open', 'open', 'different']);
    expect(groupCounts(items)).toEqual({ total: 3, open: 2, kept: 0, different: 1 });
    expect(nextOpenGroup(items, -1)).toBe(0);
    expect(nextOpenGroup(items, 0)).toBe(1);
    expect(nextOpenGroup(items, 1)).toBe(0);
    expect(nextOpenGroup(items.slice(2), -1)).toBeNull();
  });
});

describe('the group screen keys (pure)', () => {
  const tax = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
  const s0 = initialGroupKeyState(tax);

  it('1-9 keep that class, d different faces, u undo, arrows and p/n move, ? help, q quit', () => {
    expect(handleGroupKey(s0, { input: '4' }).effect).toEqual({ kind: 'keep', label: 'happiness' });
    expect(handleGroupKey(s0, { input: '8' }).effect).toEqual({ kind: 'say', status: 'no class 8: this dataset has 7' });
    expect(handleGroupKey(s0, { input: 'd' }).effect).toEqual({ kind: 'different' });
    expect(handleGroupKey(s0, { input: 'u' }).effect).toEqual({ kind: 'undo' });
    expect(handleGroupKey(s0, { input: '', rightArrow: true }).effect).toEqual({ kind: 'move', dir: 1 });
    expect(handleGroupKey(s0, { input: 'p' }).effect).toEqual({ kind: 'move', dir: -1 });
    expect(handleGroupKey(s0, { input: 'q' }).effect).toEqual({ kind: 'quit' });
    expect(handleGroupKey(s0, { input: 'a' }).effect).toEqual({ kind: 'none' });
    const help = handleGroupKey(s0, { input: '?' }).state;
    expect(help.mode).toBe('help');
    // any key closes the help, and does nothing else
    expect(handleGroupKey(help, { input: '4' })).toEqual({ state: s0, effect: { kind: 'redraw' } });
  });

  it('the layout puts the faces side by side within the width', () => {
    for (const [cols, rows, members] of [
      [80, 24, 2],
      [100, 30, 5],
      [80, 24, 30],
    ] as const) {
      const l = computeGroupLayout(cols, rows, members, groupLegendEntries(7));
      expect(l.faces).toBeGreaterThanOrEqual(Math.min(2, members));
      expect(l.faces * (l.faceCols + 2) - 2).toBeLessThanOrEqual(cols);
      expect(l.faceRows).toBeGreaterThanOrEqual(3);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('group decisions in the store (planted copies, real `fer-clean quality`)', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => {
    const path = join(dir, 'g.db');
    copyFileSync(template, path);
    const db = openStore(path);
    const ds = db.prepare(`SELECT id, taxonomy FROM datasets`).get() as { id: number; taxonomy: string };
    return { db, path, datasetId: ds.id, taxonomy: JSON.parse(ds.taxonomy) as string[] };
  });
  const idOf = (db: DB, path: string) => (db.prepare(`SELECT id FROM images WHERE path = ?`).get(path) as { id: number }).id;
  const count = (db: DB, table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

  it('the review items are the two planted groups whose labels disagree, not the one that agrees', () => {
    const items = loadGroupItems(s.db, s.datasetId);
    expect(items.map((g) => g.members.map((m) => `${m.path}:${m.given}`).sort()).sort()).toEqual(
      [
        [`${COPY[1]}:disgust`, `${COPY[0]}:neutral`],
        [`${REENCODED[1]}:anger`, `${REENCODED[0]}:happiness`],
      ].sort(),
    );
    expect(items.every((g) => g.settled === null)).toBe(true);
  });

  it('keep-label makes the label a decision in force on every image (export writes it); undo takes it all back', async () => {
    const ids = [idOf(s.db, REENCODED[0]), idOf(s.db, REENCODED[1])];
    const who = { annotator: 'carol', datasetId: s.datasetId, runId };
    recordGroupDecision(s.db, who, ids, 'keep-label', 'happiness', { taxonomy: s.taxonomy });
    const inForce = decisionsInForce(s.db, { datasetId: s.datasetId });
    expect(ids.map((id) => [inForce.get(id)?.label, inForce.get(id)?.annotator])).toEqual([
      ['happiness', 'carol'],
      ['happiness', 'carol'],
    ]);
    const g = loadGroupItems(s.db, s.datasetId).find((x) => x.members.some((m) => m.imageId === ids[0]))!;
    expect(g.settled).toEqual({ kind: 'kept', label: 'happiness', by: 'carol', decisionId: expect.any(Number) });

    // training with --trust-decisions takes it as a trusted label for both images
    const labels = Int32Array.from(ids, () => s.taxonomy.indexOf('neutral'));
    const mask = trustedLabels(s.db, s.datasetId, ids, [0, 1], labels, s.taxonomy);
    expect([...mask]).toEqual([1, 1]);
    expect([...labels].map((k) => s.taxonomy[k])).toEqual(['happiness', 'happiness']);

    // export reads it through the decisions in force: both copies leave with happiness, as manual decisions
    const out = join(t.dir, 'labels.csv');
    const e = await cliAt(s.path, 'export', out, '--run', String(runId));
    expect(e.code, e.stderr).toBe(0);
    const rows = parse(readFileSync(out), { columns: true }) as Record<string, string>[];
    for (const p of REENCODED) {
      expect(rows.find((r) => r['path'] === p), p).toMatchObject({ final_label: 'happiness', decision: 'manual', annotator: 'carol' });
    }

    const u = undoLastGroupDecision(s.db, who);
    expect(u?.undone.action).toBe('keep-label');
    expect(u?.images).toEqual([...ids].sort((a, b) => a - b));
    const after = decisionsInForce(s.db, { datasetId: s.datasetId });
    expect(ids.map((id) => after.has(id))).toEqual([false, false]);
    expect(loadGroupItems(s.db, s.datasetId).find((x) => x.members.some((m) => m.imageId === ids[0]))!.settled).toBeNull();
    expect(undoLastGroupDecision(s.db, who)).toBeUndefined();
  });

  it('different faces settles the group, changes no label, and export --dedupe drop keeps both images', async () => {
    const ids = [idOf(s.db, COPY[0]), idOf(s.db, COPY[1])];
    const exported = async () => {
      const out = join(t.dir, 'dedupe.csv');
      const e = await cliAt(s.path, 'export', out, '--run', String(runId), '--dedupe', 'drop');
      expect(e.code, e.stderr).toBe(0);
      return (parse(readFileSync(out), { columns: true }) as Record<string, string>[]).map((r) => r['path']);
    };
    // before: the byte-identical copy is one of a group, so one of the two is dropped
    const before = await exported();
    expect(COPY.filter((p) => before.includes(p))).toHaveLength(1);
    const rows = count(s.db, 'decisions');
    recordGroupDecision(s.db, { annotator: 'dan', datasetId: s.datasetId, runId }, ids, 'different-faces');
    expect(count(s.db, 'decisions')).toBe(rows);
    const g = loadGroupItems(s.db, s.datasetId).find((x) => x.members.some((m) => m.imageId === ids[0]))!;
    expect(g.settled).toEqual({ kind: 'different', by: 'dan', decisionId: expect.any(Number) });
    const after = await exported();
    expect(COPY.filter((p) => after.includes(p))).toHaveLength(2);
    // the other groups are still deduplicated
    expect(after.length).toBe(before.length + 1);
  });

  it('a decision that cannot be written whole writes nothing (an image of another dataset, an unknown label)', () => {
    const ids = [idOf(s.db, COPY[0]), idOf(s.db, COPY[1])];
    const who = { annotator: 'dan', datasetId: s.datasetId, runId };
    const tables = () => ['group_decisions', 'group_decision_images', 'decisions'].map((x) => count(s.db, x));
    const before = tables();
    expect(() => recordGroupDecision(s.db, who, [...ids, 999_999], 'keep-label', 'anger')).toThrow(/image 999999 is not in dataset/);
    expect(() => recordGroupDecision(s.db, who, ids, 'keep-label', 'joy', { taxonomy: s.taxonomy })).toThrow(/label 'joy' is not one of/);
    expect(tables()).toEqual(before);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('review --duplicates screen (ink-testing-library)', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => {
    const path = join(dir, 'g.db');
    copyFileSync(template, path);
    return { db: openStore(path), path };
  });
  afterEach(() => cleanup());

  async function until(frame: () => string | undefined, ok: (f: string) => boolean, what: string): Promise<string> {
    const start = Date.now();
    while (Date.now() - start < 20_000) {
      const f = stripAnsi(frame() ?? '');
      if (ok(f)) return f;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`timed out waiting for ${what}; last frame:\n${stripAnsi(frame() ?? '')}`);
  }

  it('shows the faces of a group side by side with paths, splits and labels; keys keep a label, mark different faces, undo', async () => {
    const session = GroupSession.open(s.db, { annotator: 'erin', runId });
    const app = render(<GroupApp session={session} colorMode="truecolor" />);
    const press = async (key: string, ok: (f: string) => boolean, what: string) => {
      app.stdin.write(key);
      return until(app.lastFrame, ok, what);
    };
    const drawn = (f: string) => f.includes('group 1/2') && !f.includes('(drawing…)');
    const f = await until(app.lastFrame, drawn, 'the first group with its faces');
    const first = session.snapshot().shown!.item;
    for (const m of first.members) expect(f).toContain(`${m.path} (${m.split}) ${m.given}`);
    expect(f).toContain('open: the labels disagree');
    expect(f).toContain('0/2 groups settled');
    // two faces on the same rows: two runs of half-blocks on one line, in 24-bit colour
    expect(f.split('\n').some((line) => /▀+ +▀+/.test(line))).toBe(true);
    expect(app.lastFrame()).toMatch(/\x1b\[38;2;\d+;\d+;\d+m\x1b\[48;2;\d+;\d+;\d+m▀/);
    for (const line of f.split('\n')) expect(line.length).toBeLessThanOrEqual(100);

    // 4 = happiness: kept for every image, the next open group comes
    const f2 = await press('4', (x) => x.includes('group 2/2') && x.includes('kept happiness for 2 images'), 'group 2 after 4');
    expect(f2).toContain('1/2 groups settled · 1 one label');
    const inForce = decisionsInForce(s.db, { datasetId: session.who.datasetId });
    expect(first.members.map((m) => inForce.get(m.imageId)?.label)).toEqual(['happiness', 'happiness']);

    // d: different faces; nothing left
    const f3 = await press('d', (x) => x.includes('2 images marked as different faces; no group left to decide'), 'after d');
    expect(f3).toContain('2/2 groups settled · 1 one label · 1 different faces');
    // ← goes back to the kept group, settled
    const f4 = await press('\x1b[D', (x) => x.includes('group 1/2'), 'back to group 1');
    expect(f4).toContain('settled: happiness for every image (kept by erin)');
    // u undoes the last group decision (different faces) and shows that group again, open
    const f5 = await press('u', (x) => x.includes('undone: different faces'), 'after u');
    expect(f5).toContain('group 2/2');
    expect(f5).toContain('open: the labels disagree');
    expect(f5).toContain('1/2 groups settled');
  }, 30_000);
});

// ---------------------------------------------------------------------------------------------------------------
describe('queue / decide / undo --duplicates and review --duplicates without a terminal', () => {
  const t = useTempDir();
  const s = useStore(t, (dir) => {
    const path = join(dir, 'g.db');
    copyFileSync(template, path);
    return { db: { close: () => undefined }, path };
  });

  it('queue --duplicates --json lists the open groups; decide --duplicates applies a CSV; undo --duplicates takes one back', async () => {
    const q = await cliAt(s.path, 'queue', '--duplicates', '--json');
    expect(q.code, q.stderr).toBe(0);
    const j = JSON.parse(q.stdout);
    expect(j).toMatchObject({ dataset: 'planted', total: 2, open: 2 });
    expect(j.groups.map((g: { images: { path: string }[] }) => g.images.map((m) => m.path).sort()).sort()).toEqual(
      [[...COPY].sort(), [...REENCODED].sort()].sort(),
    );

    const csv = join(t.dir, 'groups.csv');
    writeFileSync(csv, `path,action,label\n${REENCODED[0]},keep-label,happy\n${COPY[1]},different-faces,\n`);
    const d = await cliAt(s.path, 'decide', '--duplicates', '--annotator', 'fay', csv);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('2 group decision(s) by fay (1 keep-label, 1 different-faces)');
    const again = await cliAt(s.path, 'decide', '--duplicates', '--annotator', 'fay', csv);
    expect(again.stdout).toContain('0 group decision(s) by fay (0 keep-label, 0 different-faces); 2 unchanged');
    const left = JSON.parse((await cliAt(s.path, 'queue', '--duplicates', '--json')).stdout);
    expect(left).toMatchObject({ total: 2, open: 0, groups: [] });

    const u = await cliAt(s.path, 'undo', '--duplicates', '--annotator', 'fay');
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toContain('undid different-faces on 2 images');
    expect(JSON.parse((await cliAt(s.path, 'queue', '--duplicates', '--json')).stdout).open).toBe(1);
  }, 30_000);

  it('decide --duplicates names every bad row with file:line and applies nothing', async () => {
    const csv = join(t.dir, 'bad.csv');
    writeFileSync(csv, `path,action,label\n${REENCODED[0]},keep-label,joy\n${REENCODED[1]},different-faces,\nnowhere.png,keep-label,anger\n${COPY[0]},merge,\n`);
    const d = await cliAt(s.path, 'decide', '--duplicates', '--annotator', 'fay', csv);
    expect(d.code).not.toBe(0);
    expect(d.stderr).toContain('bad.csv:2:');
    expect(d.stderr).toContain("bad.csv:3: '" + REENCODED[1] + "' is in the group already decided on line 2");
    expect(d.stderr).toContain("bad.csv:4: 'nowhere.png' is in no duplicate group with disagreeing labels");
    expect(d.stderr).toContain("bad.csv:5: action 'merge' is not one of keep-label, different-faces");
    expect(d.stderr).toContain('nothing was applied');
    expect(JSON.parse((await cliAt(s.path, 'queue', '--duplicates', '--json')).stdout).open).toBe(2);
  }, 30_000);

  it('review --duplicates with piped input says it needs a terminal', async () => {
    const r = await cliAt(s.path, 'review', '--duplicates', '--annotator', 'gus');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/review is interactive and needs a terminal/);
  });
});

describe('the duplicate-group screen layout', () => {
  it('shows every member of a small group side by side, shrinking the faces to fit the width', () => {
    const entries = ['1-7 keep label', 'd different faces', 'q quit'];
    // a 3-image group on 120 columns: three faces, not two at full height
    const three = computeGroupLayout(120, 40, 3, entries);
    expect(three.faces).toBe(3);
    expect(three.faces * (three.faceCols + 2) - 2).toBeLessThanOrEqual(120);
    expect(three.faceCols).toBeGreaterThanOrEqual(GROUP_FACE_MIN_COLS);
    // two members on a wide terminal keep the full height the rows allow
    const two = computeGroupLayout(200, 40, 2, entries);
    expect(two.faces).toBe(2);
    expect(two.faceCols).toBe(two.faceRows * 2);
    // a big group on 80 columns: as many as fit at the narrowest face, the list names the rest
    const big = computeGroupLayout(80, 24, 24, entries);
    expect(big.faces).toBe(Math.floor(82 / (GROUP_FACE_MIN_COLS + 2)));
    expect(big.faces * (big.faceCols + 2) - 2).toBeLessThanOrEqual(80);
  });
});
