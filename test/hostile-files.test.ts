/**
 * Issue 20: every file the tool opens because a file or a user named it goes through one checked open (src/files.ts):
 * fifos, devices, sockets and folders are refused by name in bounded time, sizes are capped, reads are bounded.
 * The special files are made privately inside each test's temp folder (mkfifo, mknod), never under /dev.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { FILE_LIMITS, FileReadError, readChecked } from '../src/files.js';
import { exportLabels } from '../src/export/index.js';
import { decodeRgb } from '../src/features/decode.js';
import { renderFace } from '../src/review/terminal/face.js';
import { openOutput } from '../src/output.js';
import { ingest } from '../src/ingest/index.js';
import { resolveDataset } from '../src/store/datasets.js';
import { inspectImage } from '../src/ingest/images.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, useStore, useTempDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;

const t = useTempDir();
const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'x.db')) }));
let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
});

const fifo = (path: string): string => (execFileSync('mkfifo', [path]), path);
/** A private character device: 1,5 is the kernel's endless zeros (what /dev/zero is), 1,3 the null device. */
const charDevice = (path: string, minor = 5): string => (execFileSync('mknod', [path, 'c', '1', String(minor)]), path);
async function socket(path: string): Promise<string> {
  const s = createServer();
  servers.push(s);
  await new Promise<void>((r) => s.listen(path, r));
  return path;
}

/** A CSV dataset in the temp folder: two real faces plus `extra` rows (path, label). */
function csvDataset(extra: [string, string][]): string {
  mkdirSync(join(t.dir, 'img'));
  cpSync(fixture('bad', 'images', 'fer0014103.png'), join(t.dir, 'img', 'a.png'));
  cpSync(fixture('bad', 'images', 'fer0015783.png'), join(t.dir, 'img', 'b.png'));
  const rows = [['img/a.png', 'happy'], ['img/b.png', 'sad'], ...extra].map((r) => r.join(','));
  writeFileSync(join(t.dir, 'p.csv'), `path,label\n${rows.join('\n')}\n`);
  return join(t.dir, 'p.csv');
}

const images = (): number => (store.db.prepare(`SELECT count(*) AS n FROM images`).get() as { n: number }).n;

describe('readChecked: the one checked open', () => {
  it('reads a regular file, also through a symlink; refuses a fifo, a socket, a folder and a device by name', async () => {
    writeFileSync(join(t.dir, 'f.txt'), 'hello');
    symlinkSync(join(t.dir, 'f.txt'), join(t.dir, 'link.txt'));
    expect(readChecked(join(t.dir, 'link.txt'), 'source').toString()).toBe('hello');
    expect(readChecked(join(t.dir, 'f.txt'), 'source', { head: 2 }).toString()).toBe('he');
    const refused = (p: string): string => {
      try {
        readChecked(p, 'image');
      } catch (e) {
        expect(e).toBeInstanceOf(FileReadError);
        return (e as Error).message;
      }
      throw new Error(`${p} was read`);
    };
    expect(refused(fifo(join(t.dir, 'p')))).toBe(`${join(t.dir, 'p')}: is a named pipe (fifo), not a regular file`);
    expect(refused(await socket(join(t.dir, 's')))).toMatch(/s: is a socket, not a regular file$/);
    expect(refused(t.dir)).toMatch(/: is a folder, not a regular file$/);
    expect(refused(join(t.dir, 'none'))).toMatch(/none: no such file$/);
    if (isRoot) {
      charDevice(join(t.dir, 'zero'));
      symlinkSync(join(t.dir, 'zero'), join(t.dir, 'zero-link.png'));
      expect(refused(join(t.dir, 'zero-link.png'))).toMatch(/zero-link\.png: is a character device, not a regular file$/);
    }
  });

  it('refuses a file above the cap by its size, without reading it', () => {
    const big = join(t.dir, 'big.png');
    writeFileSync(big, '');
    execFileSync('truncate', ['-s', String(FILE_LIMITS.image + 1), big]); // sparse: no disk used
    expect(() => readChecked(big, 'image')).toThrow(/big\.png: is 256 MiB, more than the 256 MiB an image file may be/);
  });
});

describe('issue 20 items 1, 2: a CSV row naming a fifo or a device', () => {
  it('a fifo (also through a symlink) is a problem naming the row, with and without --skip-bad, in bounded time', async () => {
    mkdirSync(join(t.dir, 'p'));
    fifo(join(t.dir, 'p', 'fifo.png'));
    symlinkSync(join(t.dir, 'p', 'fifo.png'), join(t.dir, 'p', 'via-link.png'));
    const csv = csvDataset([['p/fifo.png', 'sad'], ['p/via-link.png', 'happy']]);
    await expect(ingest(store.db, { source: csv })).rejects.toThrow(/2 problems/);
    expect(images()).toBe(0);
    const s = await ingest(store.db, { source: csv, skipBad: true });
    expect(s.images).toBe(2);
    expect(s.skipped.map((p) => `${p.where}: ${p.message}`)).toEqual([
      'p.csv:4: p/fifo.png: image file is a named pipe (fifo), not a regular file',
      'p.csv:5: p/via-link.png: image file is a named pipe (fifo), not a regular file',
    ]);
  });

  it.skipIf(!isRoot)('a character device is refused without being read (no unbounded memory)', async () => {
    charDevice(join(t.dir, 'x.png'));
    const r = await inspectImage(join(t.dir, 'x.png'));
    expect(r).toEqual({ ok: false, error: 'image file is a character device, not a regular file' });
    const csv = csvDataset([['x.png', 'sad']]);
    const io = captureIo(t.dir);
    expect(await run(['ingest', csv, '--db', join(t.dir, 'cli.db')], io)).toBe(1);
    expect(io.stderr.text).toMatch(/p\.csv:4: x\.png: image file is a character device, not a regular file/);
  });

  it('a socket or a folder named as an image is refused by name', async () => {
    await socket(join(t.dir, 'sock.png'));
    mkdirSync(join(t.dir, 'dir.png'));
    const csv = csvDataset([['sock.png', 'sad'], ['dir.png', 'sad']]);
    const s = await ingest(store.db, { source: csv, skipBad: true });
    expect(s.skipped.map((p) => p.message)).toEqual([
      'image file is a socket, not a regular file',
      'image file is a folder, not a regular file',
    ]);
  });

  it('the source itself as a fifo or a device is refused by name (format detection reads a bounded head)', async () => {
    const p = fifo(join(t.dir, 'labels.csv'));
    await expect(ingest(store.db, { source: p })).rejects.toThrow(`${p}: is a named pipe (fifo), not a regular file`);
    await expect(ingest(store.db, { source: p, format: 'csv' })).rejects.toThrow(/is a named pipe \(fifo\), not a regular file/);
    if (isRoot) {
      const z = charDevice(join(t.dir, 'zero.csv'));
      await expect(ingest(store.db, { source: z, format: 'affectnet' })).rejects.toThrow(/zero\.csv: is a character device/);
      await expect(ingest(store.db, { source: z, format: 'fer2013' })).rejects.toThrow(/zero\.csv: is a character device/);
    }
  });
});

describe('--db naming something that is not a file', () => {
  it('a fifo or a folder is refused by name, not opened by SQLite', () => {
    const p = fifo(join(t.dir, 'db-fifo'));
    expect(() => openStore(p)).toThrow(`${p}: is a named pipe (fifo), not a regular file`);
    mkdirSync(join(t.dir, 'db-dir'));
    expect(() => openStore(join(t.dir, 'db-dir'))).toThrow(/db-dir: is a folder, not a regular file/);
  });
});

describe('issue 20 item 8: temp files of an interrupted export', () => {
  it('are removed by the next write to the same target; a running export’s temp file is left alone', async () => {
    await ingest(store.db, { source: fixture('csv', 'labels.csv'), labelEncoding: 'fer2013' });
    const out = join(t.dir, 'out.csv');
    writeFileSync(out, 'old\n');
    // an export killed with -9 leaves .out.csv.tmp-PID-MS behind: PID is a process that has ended
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = join(t.dir, `.out.csv.tmp-${dead}-1700000000000`);
    const live = join(t.dir, `.out.csv.tmp-${process.pid}-1700000000000`);
    const other = join(t.dir, `.other.csv.tmp-${dead}-1700000000000`);
    for (const f of [stale, live, other]) writeFileSync(f, 'partial');
    await exportLabels(store.db, { dataset: resolveDataset(store.db), out });
    expect(readFileSync(out, 'utf8')).toMatch(/^path,split,original_label/);
    expect([existsSync(stale), existsSync(live), existsSync(other)]).toEqual([false, true, true]);
  });
});

/** A PNG whose header claims `w` x `h` pixels, holding almost no data (what a decompression bomb's header says). */
function pngClaiming(w: number, h: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer): number => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

describe('second pass: huge image headers, fer2013 PNGs through links', () => {
  it('a PNG whose header claims 20000x20000 px is refused from its header, before any decode', async () => {
    writeFileSync(join(t.dir, 'bomb.png'), pngClaiming(20000, 20000));
    const r = await inspectImage(join(t.dir, 'bomb.png'));
    expect(r).toEqual({ ok: false, error: 'image is 20000x20000 px (400 Mpx): more than the 50 Mpx an image may have' });
    writeFileSync(join(t.dir, 'wide.png'), pngClaiming(8000, 7000));
    expect(await inspectImage(join(t.dir, 'wide.png'))).toEqual({ ok: false, error: 'image is 8000x7000 px (56 Mpx): more than the 50 Mpx an image may have' });
  });

  it('fer2013: a symlink (or fifo) where a PNG goes is an error naming it; the file it points to is not written', async () => {
    const csv = join(t.dir, 'fer2013.csv');
    cpSync(fixture('fer2013', 'fer2013.csv'), csv);
    const pngs = join(t.dir, "fer2013-images");
    mkdirSync(pngs);
    const victim = join(t.dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(pngs, "fer0000000.png"));
    await expect(ingest(store.db, { source: csv, images: pngs })).rejects.toThrow(/fer0000000\.png: is a symlink, not a regular file: ingest writes the fer2013 PNGs itself/);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(images()).toBe(0);
  });
});

describe('second pass: special files in a class folder, and a file where fer2013 PNGs go', () => {
  it('a fifo, a socket or a folder with an image name is a problem naming it (skippable), not silently left out', async () => {
    const root = join(t.dir, 'faces');
    mkdirSync(join(root, 'happiness'), { recursive: true });
    mkdirSync(join(root, 'sadness', 'dir.png'), { recursive: true });
    cpSync(fixture('bad', 'images', 'fer0014103.png'), join(root, 'happiness', 'a.png'));
    cpSync(fixture('bad', 'images', 'fer0015783.png'), join(root, 'sadness', 'b.png'));
    fifo(join(root, 'sadness', 'f.png'));
    await socket(join(root, 'sadness', 's.png'));
    writeFileSync(join(root, 'sadness', 'notes.txt'), 'not an image name: not listed');
    await expect(ingest(store.db, { source: root })).rejects.toThrow(/3 problems/);
    const s = await ingest(store.db, { source: root, skipBad: true });
    expect(s.images).toBe(2);
    expect(s.skipped.map((p) => `${p.where}: ${p.message}`).sort()).toEqual([
      'sadness/dir.png: image file is a folder, not a regular file',
      'sadness/f.png: image file is a named pipe (fifo), not a regular file',
      'sadness/s.png: image file is a socket, not a regular file',
    ]);
  });

  it('fer2013 with --images naming a file: a clear error, not an internal one', async () => {
    writeFileSync(join(t.dir, 'in-the-way'), '');
    await expect(ingest(store.db, { source: fixture('fer2013', 'fer2013.csv'), images: join(t.dir, 'in-the-way') })).rejects.toThrow(
      /in-the-way: cannot make the folder for the fer2013 PNGs \(a file is in the way\)/,
    );
  });
});

describe('second pass: an export into a named pipe no one reads', () => {
  it('waits a bounded time for a reader, then says no one reads it; a reader that comes late still gets it', async () => {
    const p = fifo(join(t.dir, 'out-pipe'));
    const started = Date.now();
    expect(() => openOutput(p, undefined, 300)).toThrow(`${p}: cannot write (no process is reading this named pipe (waited 0.3 s))`);
    expect(Date.now() - started).toBeLessThan(3000);
    // a reader that opens the pipe 200 ms later (a child process: this thread waits in open)
    const reader = spawn('sh', ['-c', `sleep 0.2; cat "${p}"`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    reader.stdout.on('data', (d: Buffer) => (got += d.toString()));
    const closed = new Promise((r) => reader.on('close', r));
    const output = openOutput(p, undefined, 5000);
    await output.write('hello\n');
    await output.commit();
    await closed;
    expect(got).toBe('hello\n');
  });
});

describe('second pass: an image replaced by a fifo after ingest (embed, review)', () => {
  it('decoding for embedding and drawing for review refuse it by name instead of waiting on it', async () => {
    const p = fifo(join(t.dir, 'face.png'));
    await expect(decodeRgb(p)).rejects.toThrow(`${p}: cannot decode image (is a named pipe (fifo), not a regular file)`);
    await expect(renderFace(p, 10, 5, 'none')).rejects.toThrow(`${p}: cannot read image: is a named pipe (fifo), not a regular file`);
  });
});

describe('second pass: paths no file can have, and files that are not what their size says', () => {
  it('a NUL in a path is named as such; /proc and /sys files are read within their bound', async () => {
    writeFileSync(join(t.dir, 'l.csv'), `path,label\n${fixture('bad', 'images', 'fer0014103.png')},happy\n"a\0b.png",sad\n/proc/self/mem,sad\n/sys/kernel/mm/transparent_hugepage/enabled,sad\n`);
    const s = await ingest(store.db, { source: join(t.dir, 'l.csv'), skipBad: true });
    expect(s.images).toBe(1);
    expect(s.skipped.map((p) => p.message)).toEqual([
      "image path 'a\0b.png' holds a NUL character: no file can be named so",
      'image file is empty', // size 0 in stat: nothing is read
      expect.stringMatching(/^cannot decode image|image file not found/),
    ]);
  });
});
