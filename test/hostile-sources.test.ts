/** Issue 20: hostile source rows: repeated AffectNet rows, source bytes kept, one GIF rule, box sizes and messages. */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import type { FerCleanError } from '../src/errors.js';
import { exportLabels } from '../src/export/index.js';
import { ingest } from '../src/ingest/index.js';
import { resolveDataset } from '../src/store/datasets.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

const TRAINING = fixture('affectnet', 'Manually_Annotated_file_lists', 'training.csv');
const IMAGES = fixture('affectnet', 'Manually_Annotated_Images');

const t = useTempDir();
const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'x.db')) }));

/** training.csv's lines (header first, no trailing empty line). */
const lines = (): string[] => readFileSync(TRAINING, 'utf8').replace(/\n$/, '').split('\n');
function affectnet(ls: string[] | Buffer, name = 'training.csv'): string {
  const f = join(t.dir, name);
  writeFileSync(f, Array.isArray(ls) ? ls.join('\n') + '\n' : ls);
  return f;
}
const withField = (line: string, k: number, v: string): string => line.split(',').map((x, i) => (i === k ? v : x)).join(',');
/** The whole text of an ingest's failure: its message and every problem listed. */
async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return [(e as Error).message, ...((e as FerCleanError).details ?? [])].join('\n');
  }
  throw new Error('ingest succeeded');
}
async function exportSame(out = join(t.dir, 'same.csv')): Promise<Buffer> {
  await exportLabels(store.db, { dataset: resolveDataset(store.db), out, format: 'same' });
  return readFileSync(out);
}

describe('issue 20 item 3: AffectNet rows repeating an image', () => {
  it('a repeat with a different face box is an error naming both lines, however wrong the box (x outside, width 1e20)', async () => {
    const ls = lines();
    for (const [k, v] of [
      [1, '100'],
      [3, '100000000000000000000'],
    ] as const) {
      const f = affectnet([...ls, withField(ls[2]!, k, v)]);
      expect(await failure(ingest(store.db, { source: f, images: IMAGES }))).toMatch(
        new RegExp(`training\\.csv:${ls.length + 1}: \\S+ is listed again with a different ${k === 1 ? 'face_x' : 'face_width'} \\(first at training\\.csv:3\\)`),
      );
    }
    // --skip-bad drops the image of both lines: which box is right is not ours to guess
    const f = affectnet([...ls, withField(ls[2]!, 5, '1.0;2.0')]);
    const s = await ingest(store.db, { source: f, images: IMAGES, skipBad: true });
    expect(s.skipped.map((p) => p.message)).toEqual([expect.stringMatching(/listed again with a different facial_landmarks \(first at training\.csv:3\)/)]);
    expect(s.images).toBe(ls.length - 2);
  });

  it('an identical repeat is kept with its image: export --format same gives back every line, byte for byte', async () => {
    const ls = lines();
    const f = affectnet([...ls.slice(0, 4), ls[2]!, ...ls.slice(4), ls[3]!]);
    const s = await ingest(store.db, { source: f, images: IMAGES });
    expect(s).toMatchObject({ images: ls.length - 1, repeatedLines: 2 });
    expect((await exportSame()).equals(readFileSync(f))).toBe(true);
    // a decision on the repeated image changes its expression on both of its lines
    const id = (store.db.prepare(`SELECT id FROM images WHERE source_line = 3`).get() as { id: number }).id;
    store.db.prepare(`INSERT INTO decisions (image_id, annotator, action, previous_label, new_label, decided_at) VALUES (?, 'a', 'manual', 'x', 'contempt', '2026-01-01')`).run(id);
    const out = (await exportSame(join(t.dir, 'changed.csv'))).toString('utf8').replace(/\n$/, '').split('\n');
    const src = readFileSync(f, 'utf8').replace(/\n$/, '').split('\n');
    expect(out).toHaveLength(src.length);
    expect(src.map((l, i) => (l === out[i] ? -1 : i)).filter((i) => i >= 0)).toEqual([2, 4]);
    expect(out[4]!.split(',')[6]).toBe('7');
  });

  it('a generic CSV keeps its repeated lines too (export --format same)', async () => {
    cpSync(fixture('bad', 'images'), join(t.dir, 'images'), { recursive: true });
    const f = join(t.dir, 'l.csv');
    writeFileSync(f, 'path,label\nimages/fer0014103.png,happy\nimages/fer0015783.png,sad\n./images/fer0014103.png,happy\n');
    const s = await ingest(store.db, { source: f });
    expect(s).toMatchObject({ images: 2, repeatedLines: 1 });
    expect((await exportSame()).toString()).toBe('path,label\nimages/fer0014103.png,happy\nimages/fer0015783.png,sad\n./images/fer0014103.png,happy\n');
  });
});

describe('issue 20 item 9: export --format same keeps bytes that are not UTF-8', () => {
  it('a row holding 0xE9 (Latin-1) comes back identical, also when another row changed', async () => {
    const ls = lines();
    const head = Buffer.from(ls.slice(0, 3).join('\n') + '\n');
    const latin = Buffer.from(withField(ls[3]!, 5, 'caf\u00e9') + '\n', 'latin1'); // 0xE9, not valid UTF-8
    const rest = Buffer.from(ls.slice(4).join('\n') + '\n');
    const f = affectnet(Buffer.concat([head, latin, rest]));
    await ingest(store.db, { source: f, images: IMAGES });
    expect((await exportSame()).equals(readFileSync(f))).toBe(true);
    store.db.prepare(`INSERT INTO decisions (image_id, annotator, action, previous_label, new_label, decided_at) VALUES ((SELECT id FROM images WHERE source_line = 2), 'a', 'manual', 'x', 'contempt', '2026-01-01')`).run();
    const out = await exportSame(join(t.dir, 'changed.csv'));
    expect(out.includes(latin)).toBe(true);
    expect(out.length).toBe(readFileSync(f).length + (out.toString('latin1').split('\n')[1]!.length - ls[1]!.length));
  });
});

describe('issue 20 items 11, 12: AffectNet face boxes', () => {
  it('a box smaller than a face can be is refused like a small image; a negative x names the rule, not Infinity', async () => {
    const ls = lines();
    const small = affectnet([ls[0]!, withField(withField(ls[1]!, 3, '3'), 4, '3')]);
    expect(await failure(ingest(store.db, { source: small, images: IMAGES }))).toMatch(
      /training\.csv:2: \S+: face box \(x \d+, y \d+, width 3, height 3\) is 3x3 px: too small to hold a face \(each side must be at least 16 px\)/,
    );
    const neg = affectnet([ls[0]!, withField(ls[1]!, 1, '-5')]);
    const io = captureIo(t.dir);
    expect(await run(['ingest', neg, '--images', IMAGES, '--db', join(t.dir, 'cli.db')], io)).toBe(1);
    expect(io.stderr.text).toMatch(/face box \(x -5, y \d+, width \d+, height \d+\) starts outside the image \(x and y must be 0 or more\)/);
    expect(io.stderr.text).not.toMatch(/Infinity/);
  });
});

describe('issue 20 item 10: one rule for GIFs (and other formats), by content, folder and CSV alike', () => {
  it('a still GIF is ingested from a folder and from a CSV; an animated GIF and an SVG are refused in both', async () => {
    const root = join(t.dir, 'faces');
    mkdirSync(join(root, 'happiness'), { recursive: true });
    mkdirSync(join(root, 'sadness'), { recursive: true });
    const grey = (v: number) => sharp({ create: { width: 48, height: 48, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer();
    await sharp(await grey(90)).gif().toFile(join(root, 'happiness', 'still.gif'));
    cpSync(fixture('bad', 'images', 'fer0015783.png'), join(root, 'sadness', 'a.png'));
    const s = await ingest(store.db, { source: root });
    expect(s.classes).toEqual({ happiness: 1, sadness: 1 });

    await sharp([await grey(10), await grey(200)], { join: { animated: true } }).gif().toFile(join(root, 'happiness', 'moving.gif'));
    writeFileSync(join(root, 'happiness', 'drawn.png'), '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>');
    const folder = await ingest(store.db, { source: root, skipBad: true, name: 'again' });
    expect(folder.skipped.map((p) => `${p.where}: ${p.message}`)).toEqual([
      'happiness/drawn.png: cannot decode image: svg is not a supported image format (PNG, JPEG, WebP, TIFF, GIF, HEIF)',
      'happiness/moving.gif: image is an animated GIF (2 frames): save the face as a still image',
    ]);
    writeFileSync(join(t.dir, 'l.csv'), 'path,label\nfaces/happiness/still.gif,happy\nfaces/happiness/moving.gif,happy\nfaces/happiness/drawn.png,sad\n');
    const csv = await ingest(store.db, { source: join(t.dir, 'l.csv'), skipBad: true });
    expect(csv.images).toBe(1);
    expect(csv.skipped.map((p) => p.message)).toEqual([
      'image is an animated GIF (2 frames): save the face as a still image',
      'cannot decode image: svg is not a supported image format (PNG, JPEG, WebP, TIFF, GIF, HEIF)',
    ]);
  });
});

describe('second pass: fer2013 pixel values are decimal integers', () => {
  it("'0x1f' and '1e2' are refused naming the pixel, as '256' is", async () => {
    const lines = readFileSync(fixture('fer2013', 'fer2013.csv'), 'utf8').split('\n');
    for (const bad of ['0x1f', '1e2', '256']) {
      const f = lines[1]!.split(',');
      f[1] = [bad, ...f[1]!.split(' ').slice(1)].join(' ');
      const csv = join(t.dir, 'fer2013.csv');
      writeFileSync(csv, [lines[0], f.join(','), ...lines.slice(2)].join('\n'));
      expect(await failure(ingest(store.db, { source: csv, images: join(t.dir, 'png') }))).toContain(`fer2013.csv:2: pixel 1 is '${bad}', expected an integer 0-255`);
    }
  });
});
