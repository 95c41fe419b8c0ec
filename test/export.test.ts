import { parse } from 'csv-parse/sync';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { EXPORT_COLUMNS, exportLabels } from '../src/export/index.js';
import { openOutput } from '../src/output.js';
import { ingest } from '../src/ingest/index.js';
import { openStore, type DB } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

const t = useTempDir();
const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'test.db')) }));

const readCsv = (path: string): Record<string, string>[] => parse(readFileSync(path), { columns: true });

/** A finished run with a proposal for the first `n` train images: propose 'neutral' (or 'happiness' if given neutral). */
function fakeRun(n: number): { runId: number; proposed: { id: number; path: string; given: string; proposed: string }[] } {
  const runId = Number(
    store.db
      .prepare(`INSERT INTO runs (dataset_id, method, backbone, backend, seed, config, status, started_at) VALUES (1, 'scn', 'faceexpr', 'cpu', 1, '{}', 'done', 'now')`)
      .run().lastInsertRowid,
  );
  const imgs = store.db.prepare(`SELECT i.id, i.path, l.given FROM images i JOIN labels l ON l.image_id = i.id ORDER BY i.id`).all() as { id: number; path: string; given: string }[];
  const ins = store.db.prepare(
    `INSERT INTO run_images (run_id, image_id, given_label, trained_label, importance, probs, predicted_label, proposed_label, proposal_margin) VALUES (?, ?, ?, ?, ?, '[]', ?, ?, ?)`,
  );
  const proposed = [];
  for (const [k, im] of imgs.entries()) {
    const p = k < n ? (im.given === 'neutral' ? 'happiness' : 'neutral') : null;
    ins.run(runId, im.id, im.given, p ?? im.given, 0.5, p ?? im.given, p, p ? 0.4 : null);
    if (p) proposed.push({ ...im, proposed: p });
  }
  return { runId, proposed };
}

function decide(imageId: number, action: string, prev: string, next: string, undoes: number | null = null): number {
  return Number(
    store.db
      .prepare(`INSERT INTO decisions (run_id, image_id, annotator, action, previous_label, new_label, undoes, decided_at) VALUES (1, ?, 'ann', ?, ?, ?, ?, '2026-11-28T10:00:00Z')`)
      .run(imageId, action, prev, next, undoes).lastInsertRowid,
  );
}

describe('export', () => {
  it('round trip: ingest -> export keeps every path, split and label', async () => {
    await ingest(store.db, { source: fixture('ferplus', 'labels.csv') });
    const out = join(t.dir, 'out.csv');
    const s = await exportLabels(store.db, { dataset: resolveDataset(store.db), out });
    const src = readCsv(fixture('ferplus', 'labels.csv'));
    const rows = readCsv(out);
    expect(Object.keys(rows[0]!)).toEqual([...EXPORT_COLUMNS]);
    expect(s.rows).toBe(src.length);
    expect(rows.map((r) => [r['path'], r['split'], r['original_label'], r['final_label'], r['changed'], r['decision']])).toEqual(
      src.map((r) => [r['image'], r['split'], r['fer2013_label'], r['fer2013_label'], '0', 'none']),
    );
  });

  it('final labels follow the decisions in force: accepted, manual, rejected, undone', async () => {
    await ingest(store.db, { source: fixture('ferplus', 'labels.csv') });
    const { proposed } = fakeRun(5);
    const [a, b, c, d, e] = proposed as [typeof proposed[0], typeof proposed[0], typeof proposed[0], typeof proposed[0], typeof proposed[0]];
    decide(a.id, 'accepted', a.given, a.proposed);
    decide(b.id, 'rejected', b.given, b.given);
    decide(c.id, 'manual', c.given, 'surprise');
    const undone = decide(d.id, 'accepted', d.given, d.proposed);
    decide(d.id, 'undo', d.proposed, d.given, undone);
    decide(e.id, 'skipped', e.given, e.given);
    const out = join(t.dir, 'out.csv');
    const s = await exportLabels(store.db, { dataset: resolveDataset(store.db), out });
    const byPath = new Map(readCsv(out).map((r) => [r['path'], r]));
    expect(byPath.get(a.path)).toMatchObject({ final_label: a.proposed, changed: '1', decision: 'accepted', annotator: 'ann', proposed_label: a.proposed, proposal_margin: '0.4' });
    expect(byPath.get(b.path)).toMatchObject({ final_label: b.given, changed: '0', decision: 'rejected' });
    expect(byPath.get(c.path)).toMatchObject({ final_label: 'surprise', changed: '1', decision: 'manual' });
    expect(byPath.get(d.path)).toMatchObject({ final_label: d.given, changed: '0', decision: 'none' });
    expect(byPath.get(e.path)).toMatchObject({ final_label: e.given, decision: 'none' });
    expect(s).toMatchObject({ changed: 2, decisions: { accepted: 1, rejected: 1, manual: 1 } });

    await exportLabels(store.db, { dataset: resolveDataset(store.db), out, onlyDecided: true });
    expect(readCsv(out).map((r) => r['path']).sort()).toEqual([a.path, b.path, c.path].sort());

    const s2 = await exportLabels(store.db, { dataset: resolveDataset(store.db), out, includeUndecidedProposals: true });
    const rows2 = new Map(readCsv(out).map((r) => [r['path'], r]));
    expect(rows2.get(d.path)).toMatchObject({ final_label: d.proposed, decision: 'none', changed: '1' });
    expect(rows2.get(e.path)).toMatchObject({ final_label: e.proposed });
    expect(rows2.get(b.path)).toMatchObject({ final_label: b.given });
    expect(s2.proposalsApplied).toBe(2);
  });

  it('--format same writes the source CSV back with the label column replaced', async () => {
    await ingest(store.db, { source: fixture('csv', 'labels.csv'), labelEncoding: 'fer2013' });
    const { proposed } = fakeRun(1);
    decide(proposed[0]!.id, 'accepted', proposed[0]!.given, proposed[0]!.proposed);
    const out = join(t.dir, 'same.csv');
    await exportLabels(store.db, { dataset: resolveDataset(store.db), out, format: 'same' });
    const src = readCsv(fixture('csv', 'labels.csv'));
    const back = readCsv(out);
    expect(back).toHaveLength(src.length);
    const CLASSES = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
    back.forEach((r, i) => {
      expect(r['file']).toBe(src[i]!['file']);
      expect(r['usage']).toBe(src[i]!['usage']);
      const expected = r['file'] === proposed[0]!.path ? String(CLASSES.indexOf(proposed[0]!.proposed)) : src[i]!['emotion'];
      expect(r['emotion']).toBe(expected);
    });
  });

  it('--format same writes a RAF-DB list back', async () => {
    await ingest(store.db, { source: fixture('rafdb') });
    const out = join(t.dir, 'list.txt');
    await exportLabels(store.db, { dataset: resolveDataset(store.db), out, format: 'same' });
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(fixture('rafdb', 'EmoLabel', 'list_patition_label.txt'), 'utf8'));
  });

  it('--format same is refused for imagefolder, before anything is written', async () => {
    await ingest(store.db, { source: fixture('imagefolder') });
    const out = join(t.dir, 'x.csv');
    await expect(exportLabels(store.db, { dataset: resolveDataset(store.db), out, format: 'same' })).rejects.toThrow(/not available for imagefolder/);
    expect(existsSync(out)).toBe(false);
  });

  it('a write that fails (disk full) leaves the old file whole and no temp file behind', async () => {
    const out = join(t.dir, 'labels.csv');
    writeFileSync(out, 'old\n');
    // A private stand-in for /dev/full (root may write to read-only folders, not to a full device).
    const full = join(t.dir, 'full');
    execFileSync('mknod', [full, 'c', '1', '7']);
    const toFullDisk = (_fd: number, buf: Buffer, off: number): number => {
      const f = openSync(full, 'w');
      try {
        return writeSync(f, buf, off);
      } finally {
        closeSync(f);
      }
    };
    const failing = openOutput(out, toFullDisk);
    await expect(failing.write('new,labels\n'.repeat(1000))).rejects.toThrow(/labels\.csv: cannot write \(no space left on the device\)/);
    failing.abort();
    expect(readFileSync(out, 'utf8')).toBe('old\n');
    expect(readdirSync(t.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // The same write through the real writer replaces the file whole.
    const real = openOutput(out);
    await real.write('new\n');
    await real.commit();
    expect(readFileSync(out, 'utf8')).toBe('new\n');
    expect(readdirSync(t.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('--format same writes fer2013.csv back: pixels of each image, the new label code, Usage', async () => {
    await ingest(store.db, { source: fixture('fer2013', 'fer2013.csv'), defaultImagesDir: join(t.dir, 'fer-images') });
    const { proposed } = fakeRun(1);
    const p = proposed[0]!;
    decide(p.id, 'accepted', p.given, p.proposed);
    const out = join(t.dir, 'fer2013-fixed.csv');
    await exportLabels(store.db, { dataset: resolveDataset(store.db), out, format: 'same' });
    const src = readCsv(fixture('fer2013', 'fer2013.csv'));
    const back = readCsv(out);
    expect(back).toHaveLength(src.length);
    const CLASSES = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
    const changed = back.filter((r, i) => r['emotion'] !== src[i]!['emotion']);
    expect(changed).toHaveLength(1);
    expect(changed[0]!['emotion']).toBe(String(CLASSES.indexOf(p.proposed)));
    back.forEach((r, i) => {
      expect(r['pixels']).toBe(src[i]!['pixels']);
      expect(r['Usage']).toBe(src[i]!['Usage']);
    });
  });

  it('CLI: clear errors for a missing database and an unknown run', async () => {
    const io = captureIo();
    expect(await run(['export', join(t.dir, 'o.csv'), '--db', join(t.dir, 'nope.db')], io)).toBe(1);
    expect(io.stderr.text).toMatch(/nope.db: no such database/);
    await ingest(store.db, { source: fixture('bad', 'good.csv') });
    const io2 = captureIo();
    expect(await run(['export', join(t.dir, 'o.csv'), '--db', join(t.dir, 'test.db'), '--run', '42'], io2)).toBe(1);
    expect(io2.stderr.text).toMatch(/no run with id 42/);
    const io3 = captureIo();
    expect(await run(['export', join(t.dir, 'o.csv'), '--db', join(t.dir, 'test.db')], io3)).toBe(0);
    expect(io3.stdout.text).toMatch(/wrote 2 rows/);
  });
});
