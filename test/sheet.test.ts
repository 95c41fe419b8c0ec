import { chmodSync, lstatSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { embedDataset } from '../src/features/embed.js';
import { ingest } from '../src/ingest/index.js';
import { nextItems } from '../src/review/verbs.js';
import { resolveRun } from '../src/store/runs.js';
import { renderSheet, sheetSections } from '../src/review/report/sheet.js';
import { queueTop } from '../src/review/report/top.js';
import { openStore, type DB } from '../src/store/db.js';
import { captureIo, fixture, tempDir } from './helpers.js';

let tmp: { dir: string; cleanup: () => void };
let dbPath: string;
let db: DB;

beforeAll(async () => {
  tmp = tempDir();
  dbPath = join(tmp.dir, 'sheet.db');
  db = openStore(dbPath);
  const s = await ingest(db, { source: fixture('ferplus', 'labels.csv') });
  await embedDataset(db, { datasetId: s.dataset.id, backbone: 'faceexpr', backend: 'wasm', workers: 0 });
  const io = captureIo(tmp.dir);
  expect(await run(['train', '--backend', 'wasm', '--epochs', '4', '--relabel-epoch', '2', '--db', dbPath], io), io.stderr.text).toBe(0);
}, 120_000);

afterAll(() => {
  db?.close();
  tmp?.cleanup();
});

describe('contact sheet', () => {
  it('shows the first items of the review order, then the lowest-importance training faces', () => {
    const r = resolveRun(db, { runId: 1 });
    for (const order of [undefined, 'margin', 'importance'] as const) {
      const [first, lowest] = sheetSections(db, r, { count: 10, order });
      // the review session's queue, in its order (default: by estimate)
      const queue = nextItems(db, { runId: 1, limit: 10, order }).items;
      expect(first!.faces.map((f) => f.lines[0])).toEqual(
        queue.map((q, k) => (q.explore ? `#${k + 1} est ${q.estimate.toFixed(2)} random` : `#${k + 1} estimate ${q.estimate.toFixed(2)}`)),
      );
      expect(queue.length).toBeGreaterThan(0);
      expect(first!.faces.map((f) => f.lines[1])).toEqual(queue.map((q) => `${q.given} ->`));
      expect(first!.faces.map((f) => f.lines[2])).toEqual(queue.map((q) => q.proposed));
      expect(first!.faces.map((f) => f.file)).toEqual(queue.map((q) => join(r.dataset.root, q.path)));
      const alphas = lowest!.faces.map((f) => Number(f.lines[0]!.replace('alpha ', '')));
      expect(alphas).toHaveLength(10);
      expect([...alphas].sort((a, b) => a - b)).toEqual(alphas);
    }
    // the frame colour says whether the proposal matches the FER+ majority
    const refs = db.prepare(`SELECT i.path, l.reference FROM images i JOIN labels l ON l.image_id = i.id`).all() as { path: string; reference: string | null }[];
    const refOf = new Map(refs.map((x) => [join(r.dataset.root, x.path), x.reference]));
    for (const f of sheetSections(db, r, { count: 20, lowest: 0 })[0]!.faces) {
      const ref = refOf.get(f.file) ?? null;
      expect(f.mark).toBe(ref === null ? 'unknown' : ref === f.lines[2] ? 'right' : 'wrong');
    }
  });

  it('queueTop scores the first items of the review order against the reference labels', () => {
    const r = resolveRun(db, { runId: 1 });
    const queue = nextItems(db, { runId: 1 }).items;
    const ref = db.prepare(`SELECT reference FROM labels WHERE image_id = ?`);
    const top = queueTop(db, r, 5);
    const first = queue.slice(0, 5).map((q) => ({ ...q, ref: (ref.get(q.imageId) as { reference: string | null }).reference }));
    const scored = first.filter((q) => q.ref !== null);
    expect(top).toEqual({
      run: 1,
      order: 'estimate',
      items: Math.min(5, queue.length),
      scored: scored.length,
      wrongGiven: scored.filter((q) => q.ref !== q.given).length,
      rightProposal: scored.filter((q) => q.ref === q.proposed).length,
      queue: queue.length,
    });
    expect(queueTop(db, r, 100000).items).toBe(queue.length);
  });

  it('renders a PNG with a row of faces per 8 items; an unreadable face names its file', async () => {
    const r = resolveRun(db, { runId: 1 });
    const sections = sheetSections(db, r, { count: 9, lowest: 3 });
    const png = await renderSheet(sections);
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBe(8 + 8 * (96 + 6 + 16 + 16));
    // the face pixels are there: the first tile is not the white background
    const tile = await sharp(png).extract({ left: 16 + 3, top: 70, width: 40, height: 40 }).stats();
    expect(tile.channels[0]!.stdev).toBeGreaterThan(5);
    const missing = [{ title: 't', faces: [{ ...sections[0]!.faces[0]!, file: join(tmp.dir, 'gone.png') }] }];
    await expect(renderSheet(missing)).rejects.toThrow(/gone\.png: cannot decode image/);
  });

  it('report --sheet writes the PNG and says where', async () => {
    const io = captureIo(tmp.dir);
    expect(await run(['report', '--sheet', 'queue.png', '--sheet-count', '4', '--db', dbPath], io), io.stderr.text).toBe(0);
    expect(io.stdout.text).toMatch(/contact sheet: .*queue\.png \(\d+ faces \+ 4 faces\)/);
    expect((await sharp(join(tmp.dir, 'queue.png')).metadata()).format).toBe('png');
    const bad = captureIo(tmp.dir);
    expect(await run(['report', '--sheet', join(tmp.dir, 'no', 'such', 'dir', 'q.png'), '--db', dbPath], bad)).toBe(1);
    expect(bad.stderr.text).toMatch(/q\.png: cannot write the contact sheet \(ENOENT\)/);
  });

  it('report --sheet writes through a symlink and keeps an existing file\'s mode, as export does', async () => {
    const target = join(tmp.dir, 'kept.png');
    writeFileSync(target, 'old');
    chmodSync(target, 0o640);
    const link = join(tmp.dir, 'link.png');
    symlinkSync(target, link);
    const io = captureIo(tmp.dir);
    expect(await run(['report', '--sheet', link, '--sheet-count', '2', '--db', dbPath], io), io.stderr.text).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect((await sharp(target).metadata()).format).toBe('png');
    expect(statSync(target).mode & 0o777).toBe(0o640);
    expect(readdirSync(tmp.dir).filter((f) => f.includes('tmp'))).toEqual([]);
  });
});
