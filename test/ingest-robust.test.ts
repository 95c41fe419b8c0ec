import { cpSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { ingest } from '../src/ingest/index.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

const t = useTempDir();
const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'x.db')) }));

const paths = (): string[] => (store.db.prepare(`SELECT path FROM images ORDER BY path`).all() as { path: string }[]).map((r) => r.path);

describe('imagefolder follows symlinks', () => {
  /** ROOT/happiness -> the fixture's class folder (a symlinked class), ROOT/sadness/ with one symlinked image. */
  function linkedTree(): { root: string; happy: string[]; sadSrc: string } {
    const root = join(t.dir, 'faces');
    mkdirSync(join(root, 'sadness'), { recursive: true });
    const happyDir = fixture('imagefolder', 'train', 'happiness');
    symlinkSync(happyDir, join(root, 'happiness'));
    const sadDir = fixture('imagefolder', 'train', 'sadness');
    const sadSrc = readdirSync(sadDir).sort()[0]!;
    symlinkSync(join(sadDir, sadSrc), join(root, 'sadness', 'linked.png'));
    cpSync(join(sadDir, readdirSync(sadDir).sort()[1]!), join(root, 'sadness', 'plain.png'));
    return { root, happy: readdirSync(happyDir).sort(), sadSrc };
  }

  it('a symlinked class folder and a symlinked image are ingested like real ones', async () => {
    const { root, happy } = linkedTree();
    const s = await ingest(store.db, { source: root, format: 'imagefolder' });
    expect(s.classes).toEqual({ happiness: happy.length, sadness: 2 });
    expect(paths()).toEqual([...happy.map((f) => `happiness/${f}`), 'sadness/linked.png', 'sadness/plain.png']);
  });

  it('a symlink loop and a broken link are problems naming the link (nothing written), skippable', async () => {
    const { root, happy } = linkedTree();
    symlinkSync(join(root, 'sadness', 'loop-b.png'), join(root, 'sadness', 'loop-a.png'));
    symlinkSync(join(root, 'sadness', 'loop-a.png'), join(root, 'sadness', 'loop-b.png'));
    symlinkSync(join(root, 'nowhere'), join(root, 'anger'));
    const io = captureIo(t.dir);
    expect(await run(['ingest', root, '--db', join(t.dir, 'cli.db')], io)).toBe(1);
    expect(io.stderr.text).toMatch(/sadness\/loop-a\.png: symlink loop \(sadness\/loop-a\.png -> .*loop-b\.png\)/);
    expect(io.stderr.text).toMatch(/sadness\/loop-b\.png: symlink loop/);
    expect(io.stderr.text).toMatch(/anger: broken symlink \(anger -> .*nowhere: no such file or folder\)/);
    const s = await ingest(store.db, { source: root, format: 'imagefolder', skipBad: true });
    expect(s.skipped.map((p) => p.where).sort()).toEqual(['anger', 'sadness/loop-a.png', 'sadness/loop-b.png']);
    expect(s.images).toBe(happy.length + 2);
  });
});

describe('images too small to hold a face', () => {
  it('a 1x1 and a 15x40 image are refused by name with their size; 16x16 is accepted', async () => {
    const root = join(t.dir, 'faces');
    mkdirSync(join(root, 'neutral'), { recursive: true });
    const grey = (w: number, h: number, name: string) =>
      sharp({ create: { width: w, height: h, channels: 3, background: { r: 128, g: 128, b: 128 } } }).greyscale().png().toFile(join(root, 'neutral', name));
    await grey(1, 1, 'dot.png');
    await grey(15, 40, 'narrow.png');
    await grey(16, 16, 'ok.png');
    await expect(ingest(store.db, { source: root })).rejects.toMatchObject({
      details: [
        'neutral/dot.png: image is 1x1 px: too small to hold a face (each side must be at least 16 px)',
        'neutral/narrow.png: image is 15x40 px: too small to hold a face (each side must be at least 16 px)',
      ],
    });
    expect(paths()).toEqual([]);
    const s = await ingest(store.db, { source: root, skipBad: true });
    expect(s.skipped).toHaveLength(2);
    expect(paths()).toEqual(['neutral/ok.png']);
  });
});
