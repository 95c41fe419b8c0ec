import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fixturesDir } from '../src/paths.js';
import type { Io } from '../cli/io.js';

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'fer-clean-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
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
