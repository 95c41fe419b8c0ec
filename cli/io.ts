import type { Readable, Writable } from 'node:stream';
import { printable } from '../src/printable.js';

/** Where a command reads and writes; tests pass string sinks, the real CLI passes the process's streams. */
export interface Io {
  stdin: Readable & { isTTY?: boolean };
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Runs `handler` when the process exits (also on Ctrl-C); returns what cancels it. */
  onExit(handler: () => void): () => void;
}

export function processIo(): Io {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    onExit: (handler) => {
      process.once('exit', handler);
      return () => void process.off('exit', handler);
    },
  };
}

/**
 * Prints a line (or several) on standard output / error. Everything the CLI prints goes through here, so control
 * characters that came from data or arguments (a path holding ESC ] 0 ; ... BEL, a CSV cell with a carriage return)
 * are shown escaped (printable), never acted on by the terminal.
 */
export const out = (io: Io, line = ''): void => void io.stdout.write(printable(line, { lines: true }) + '\n');
export const err = (io: Io, line = ''): void => void io.stderr.write(printable(line, { lines: true }) + '\n');
