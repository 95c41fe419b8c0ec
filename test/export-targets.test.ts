import { execFileSync, spawn } from 'node:child_process';
import { existsSync, linkSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingest } from '../src/ingest/index.js';
import { openStore } from '../src/store/db.js';
import { fixture, tempDir, cliRunner } from './helpers.js';

// Every device, pipe and link here is a private stand-in made in a temp folder: never /dev/full or /dev/stdout.
let t: ReturnType<typeof tempDir>;
let dbPath: string;
beforeAll(async () => {
  t = tempDir();
  dbPath = join(t.dir, 'x.db');
  const db = openStore(dbPath);
  await ingest(db, { source: fixture('csv', 'labels.csv'), labelEncoding: 'fer2013' });
  db.close();
});
afterAll(() => t.cleanup());

const cli = cliRunner({ cwd: () => t.dir, db: () => dbPath });
const exportTo = (out: string) => cli('export', out);

/** What a plain export to a new file writes (the reference content). */
let expected: string;
beforeAll(async () => {
  const r = await exportTo(join(t.dir, 'reference.csv'));
  expect(r.code).toBe(0);
  expected = readFileSync(join(t.dir, 'reference.csv'), 'utf8');
  expect(expected.split('\n')[0]).toMatch(/^path,split,original_label,final_label/);
});

describe('export writes into what it is given, and replaces only regular files', () => {
  it('a full device: the error is reported (rc 1) and the device node stays a device', async () => {
    const full = join(t.dir, 'full');
    execFileSync('mknod', [full, 'c', '1', '7']);
    const r = await exportTo(full);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/full: cannot write \(no space left on the device\)/);
    expect(r.stdout).not.toMatch(/wrote/);
    expect(lstatSync(full).isCharacterDevice()).toBe(true);
    expect(readdirSync(t.dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('a null device is written to, not replaced', async () => {
    const nul = join(t.dir, 'null');
    execFileSync('mknod', [nul, 'c', '1', '3']);
    const r = await exportTo(nul);
    expect(r.code).toBe(0);
    expect(lstatSync(nul).isCharacterDevice()).toBe(true);
  });

  it('a named pipe is written to: the reader gets the CSV, the fifo stays', async () => {
    const fifo = join(t.dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'inherit'] });
    let got = '';
    reader.stdout.on('data', (d: Buffer) => (got += d.toString()));
    const closed = new Promise((resolve) => reader.on('close', resolve));
    const r = await exportTo(fifo);
    await closed;
    expect(r.code).toBe(0);
    expect(got).toBe(expected);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });

  it('- writes the CSV to standard output and the summary to standard error; no file named -', async () => {
    const r = await exportTo('-');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(expected);
    expect(r.stderr).toMatch(/^wrote \d+ rows to standard output/);
    expect(existsSync(join(t.dir, '-'))).toBe(false);
  });

  it('an existing file keeps its mode', async () => {
    const f = join(t.dir, 'moded.csv');
    writeFileSync(f, 'old\n');
    chmodSync(f, 0o600);
    expect((await exportTo(f)).code).toBe(0);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readFileSync(f, 'utf8')).toBe(expected);
  });

  it('a symlink is written through: the link stays a link, its target gets the CSV', async () => {
    const target = join(t.dir, 'real.csv');
    writeFileSync(target, 'old\n');
    const link = join(t.dir, 'link.csv');
    symlinkSync(target, link);
    expect((await exportTo(link)).code).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe(expected);
  });

  it('a file with two hard links stays one inode: both names see the new content', async () => {
    const a = join(t.dir, 'a.csv');
    const b = join(t.dir, 'b.csv');
    writeFileSync(a, 'old content that is longer than nothing\n'.repeat(500));
    linkSync(a, b);
    const ino = statSync(a).ino;
    expect((await exportTo(a)).code).toBe(0);
    expect(statSync(a).ino).toBe(ino);
    expect(statSync(b).ino).toBe(ino);
    expect(statSync(a).nlink).toBe(2);
    expect(readFileSync(b, 'utf8')).toBe(expected);
  });

  it('a symlink loop and a folder are refused by name', async () => {
    symlinkSync(join(t.dir, 'loop2'), join(t.dir, 'loop1'));
    symlinkSync(join(t.dir, 'loop1'), join(t.dir, 'loop2'));
    let r = await exportTo(join(t.dir, 'loop1'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/loop1: symlink loop/);
    r = await exportTo(t.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is a folder, not a file/);
  });
});
