import { mkdtempSync, rmSync } from 'node:fs';
import { afterEach, beforeEach } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fixturesDir } from '../src/paths.js';
import type { Io } from '../cli/io.js';
import { run } from '../cli/run.js';

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'fer-clean-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The one temp-folder fixture: a fresh folder before each test of the file (or describe block) it is called in,
 * removed after it. The object is the same for every test; its `dir` is the current test's folder.
 */
export function useTempDir(prefix?: string): { dir: string } {
  const t = { dir: '' };
  let made: ReturnType<typeof tempDir> | undefined;
  beforeEach(() => {
    made = tempDir(prefix);
    t.dir = made.dir;
  });
  afterEach(() => {
    made?.cleanup();
    made = undefined;
  });
  return t;
}

/**
 * The one store fixture: before each test, `open(dir)` in the temp folder `t` (a store, or a seeded database with
 * its `db`); after it, that database is closed (hooks registered after this one run first, e.g. a session's close).
 * The object returned is the same for every test and takes the fields of the current test's value, so a file keeps
 * writing `s.db`, `s.runId`.
 */
export function useStore<T extends { db: { close(): void } }>(t: { dir: string }, open: (dir: string) => T): T {
  const holder = {} as T;
  beforeEach(() => void Object.assign(holder, open(t.dir)));
  afterEach(() => holder.db?.close());
  return holder;
}

export const fixture = (...parts: string[]): string => join(fixturesDir(), ...parts);

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

/** An Io whose stdout and stderr are captured as strings. */
export function captureIo(cwd = process.cwd()): Io & { stdout: Sink; stderr: Sink } {
  return { stdin: Readable.from([]), stdout: new Sink(), stderr: new Sink(), env: {}, cwd, onExit: () => () => undefined };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The one cli() helper of the tests: runs the CLI in this process (cli/run.ts) as `fer-clean ARGS --db DB` from
 * `cwd`, with stdout and stderr captured. `cwd` and `db` are read on each call (tests set them in beforeEach);
 * `reopen` closes a connection the test holds before the command and opens it again after (for commands that need
 * the database to themselves); `squashStderr` turns every run of whitespace in stderr into one space (for messages
 * that wrap); `env` is the environment the command sees (e.g. FER_CLEAN_ANNOTATOR), empty when not given.
 */
export function cliRunner(o: {
  cwd: () => string;
  db: () => string;
  reopen?: { close: () => void; open: () => void };
  squashStderr?: boolean;
  env?: Record<string, string>;
}): (...args: string[]) => Promise<CliResult> {
  return async (...args) => {
    o.reopen?.close();
    try {
      const io = captureIo(o.cwd());
      Object.assign(io.env, o.env);
      const code = await run([...args, '--db', o.db()], io);
      return { code, stdout: io.stdout.text, stderr: o.squashStderr ? io.stderr.text.replace(/\s+/g, ' ') : io.stderr.text };
    } finally {
      o.reopen?.open();
    }
  };
}
