import type { Writable } from 'node:stream';

/** Where a command writes; tests pass string sinks, the real CLI passes process.stdout/stderr. */
export interface Io {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

export const out = (io: Io, line = ''): void => void io.stdout.write(line + '\n');
export const err = (io: Io, line = ''): void => void io.stderr.write(line + '\n');
