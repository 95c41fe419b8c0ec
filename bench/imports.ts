/**
 * `npm run bench -- imports [--rows N] [--dim D] [--csv-rows M]`: the import path at scale. Builds a database of N
 * synthetic images (rows in `images` and `labels` only: the import never opens an image), writes an N x D float32
 * .npy with its paths file and an M x D CSV, and times `fer-clean embed --from` on each as a child process under
 * /usr/bin/time (wall seconds, peak RSS); then `train --probs` on an N x 7 .npy. Defaults: N = 1,000,000, D = 512,
 * M = 100,000. Files go to .tmp/imports/ and are removed at the end.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { openStore } from '../src/store/db.js';
import { defaultTaxonomy } from '../src/taxonomy.js';
import { machine, timed } from './common.js';

function arg(name: string, fallback: number): number {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return Number(argv[i + 1]);
    if (argv[i]!.startsWith(`--${name}=`)) return Number(argv[i]!.slice(name.length + 3));
  }
  return fallback;
}


const pathOf = (i: number): string => `images/train/s${String(i).padStart(7, '0')}.png`;

/** A database with one dataset of n images (ids 1..n) and their labels; no files behind them. */
function makeDb(dbPath: string, n: number): void {
  for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) rmSync(f, { force: true });
  openStore(dbPath).close(); // migrations
  const db = new Database(dbPath);
  const tax = defaultTaxonomy();
  const now = new Date().toISOString();
  db.prepare(`INSERT INTO datasets (id, name, format, source, root, taxonomy, created_at, updated_at) VALUES (1, 'synthetic', 'csv', '/nowhere/labels.csv', '/nowhere', ?, ?, ?)`).run(
    JSON.stringify(tax),
    now,
    now,
  );
  const img = db.prepare(`INSERT INTO images (id, dataset_id, path, sha256, width, height, channels, split) VALUES (?, 1, ?, '', 48, 48, 1, ?)`);
  const lab = db.prepare(`INSERT INTO labels (image_id, given, given_raw) VALUES (?, ?, ?)`);
  db.transaction(() => {
    for (let i = 1; i <= n; i++) {
      img.run(i, pathOf(i), i % 10 === 0 ? 'test' : i % 10 === 1 ? 'valid' : 'train');
      const c = tax[i % tax.length]!;
      lab.run(i, c, c);
    }
  })();
  db.close();
}

/** Writes an n x d float32 .npy (values from a cheap hash of row and column) and its paths file, a block at a time. */
function writeNpy(file: string, pathsFile: string, n: number, d: number, probs = false): void {
  let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`;
  while ((10 + h.length + 1) % 64 !== 0) h += ' ';
  h += '\n';
  const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  pre.writeUInt16LE(h.length, 8);
  const fd = openSync(file, 'w');
  const pd = openSync(pathsFile, 'w');
  writeSync(fd, pre);
  writeSync(fd, Buffer.from(h, 'latin1'));
  const block = 4096;
  const buf = new Float32Array(block * d);
  for (let r0 = 0; r0 < n; r0 += block) {
    const m = Math.min(block, n - r0);
    const lines: string[] = [];
    for (let r = 0; r < m; r++) {
      const i = r0 + r + 1;
      let sum = 0;
      for (let j = 0; j < d; j++) {
        const v = probs ? 1 + ((i * 31 + j * 17) % 13) : (((i * 2654435761 + j * 40503) >>> 0) % 2001) / 1000 - 1;
        buf[r * d + j] = v;
        sum += v;
      }
      if (probs) for (let j = 0; j < d; j++) buf[r * d + j]! /= sum;
      lines.push(pathOf(i));
    }
    writeSync(fd, new Uint8Array(buf.buffer, 0, m * d * 4));
    writeSync(pd, lines.join('\n') + '\n');
  }
  closeSync(fd);
  closeSync(pd);
}

function writeCsv(file: string, n: number, d: number): void {
  const fd = openSync(file, 'w');
  writeSync(fd, ['path', ...Array.from({ length: d }, (_, j) => `d${j}`)].join(',') + '\n');
  let chunk: string[] = [];
  for (let i = 1; i <= n; i++) {
    const vals: string[] = [];
    for (let j = 0; j < d; j++) vals.push(((((i * 2654435761 + j * 40503) >>> 0) % 2001) / 1000 - 1).toFixed(3));
    chunk.push(`${pathOf(i)},${vals.join(',')}`);
    if (chunk.length === 2048 || i === n) {
      writeSync(fd, chunk.join('\n') + '\n');
      chunk = [];
    }
  }
  closeSync(fd);
}

export async function main(): Promise<void> {
  const N = arg('rows', 1_000_000);
  const D = arg('dim', 512);
  const M = arg('csv-rows', 100_000);
  const dir = resolve('.tmp/imports');
  mkdirSync(dir, { recursive: true });
  const load = (): string => os.loadavg().map((x) => x.toFixed(1)).join(', ');
  const lines: string[] = [`### imports (${new Date().toISOString().slice(0, 16)} UTC)`, '', `Machine: ${machine()}.`, ''];
  const rows: string[] = [];
  const gb = (f: string): string => `${(statSync(f).size / 2 ** 30).toFixed(2)} GB`;

  const big = join(dir, 'big.db');
  makeDb(big, N);
  const npy = join(dir, 'feats.npy');
  const paths = join(dir, 'feats.paths.txt');
  writeNpy(npy, paths, N, D);
  let l0 = load();
  let r = timed(['embed', '--from', npy, '--paths', paths, '--db', big], dir);
  rows.push(`| embed --from .npy float32 | ${N.toLocaleString('en')} x ${D} (${gb(npy)}) | ${r.seconds.toFixed(1)} s | ${Math.round(N / r.seconds).toLocaleString('en')} | ${(r.peakRss / 2 ** 20).toFixed(0)} MB | ${l0} |`);
  rmSync(npy);

  const probs = join(dir, 'oof.npy');
  const ppaths = join(dir, 'oof.paths.txt');
  writeNpy(probs, ppaths, N, 7, true);
  l0 = load();
  r = timed(['train', '--probs', probs, '--paths', ppaths, '--db', big], dir);
  rows.push(`| train --probs .npy float32 | ${N.toLocaleString('en')} x 7 | ${r.seconds.toFixed(1)} s | ${Math.round(N / r.seconds).toLocaleString('en')} | ${(r.peakRss / 2 ** 20).toFixed(0)} MB | ${l0} |`);
  for (const f of [big, `${big}-wal`, `${big}-shm`, probs, ppaths, paths]) rmSync(f, { force: true });

  const small = join(dir, 'small.db');
  makeDb(small, M);
  const csv = join(dir, 'feats.csv');
  writeCsv(csv, M, D);
  l0 = load();
  r = timed(['embed', '--from', csv, '--db', small], dir);
  rows.push(`| embed --from CSV | ${M.toLocaleString('en')} x ${D} (${gb(csv)}) | ${r.seconds.toFixed(1)} s | ${Math.round(M / r.seconds).toLocaleString('en')} | ${(r.peakRss / 2 ** 20).toFixed(0)} MB | ${l0} |`);
  for (const f of [small, `${small}-wal`, `${small}-shm`, csv]) rmSync(f, { force: true });

  lines.push('| import | rows x values (file) | wall | rows/s | peak RSS | load average before (1, 5, 15 min) |', '|---|---|---|---|---|---|', ...rows);
  console.log(lines.join('\n'));
}
