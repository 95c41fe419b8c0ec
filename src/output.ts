/**
 * Where an export goes, written the way the target needs:
 * - a regular file (or a new path): a temp file in the same folder, fsynced, then renamed over it, so a reader sees
 *   the old file or the whole new one; the old file's mode (and owner, when allowed) are kept;
 * - a regular file with several hard links: the new content is written to a temp file first (so a full disk or a
 *   failure leaves the original whole), then copied back into the same inode, so every link sees it;
 * - a symlink: the same rules applied to what it points to (the link itself stays);
 * - a device, fifo or socket (e.g. /dev/null, a pipe): opened and written directly; never replaced;
 * - a Writable stream (the CLI passes standard output for `-`): written directly.
 */
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { FerCleanError } from './errors.js';

export interface Output {
  /** Appends text or bytes (buffered: a failure may surface on a later write or on commit). */
  write(data: string | Uint8Array): Promise<void>;
  /** Makes the written text the target's content. */
  commit(): Promise<void>;
  /** Drops what was written (the target is left as it was, where the kind of target allows). */
  abort(): void;
}

const codeOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;
/** A write that failed: `reason` says why in a few words (no space left on the device, permission denied, ENOENT). */
export class OutputError extends FerCleanError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: cannot write (${reason})`);
  }
}

const cannot = (path: string, e: unknown): OutputError => {
  const code = codeOf(e);
  const why =
    code === 'ENOSPC' ? 'no space left on the device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : code;
  return new OutputError(path, why);
};

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return null;
    throw cannot(path, e);
  }
}

/** Writes bytes to a descriptor, returning how many were written (fs.writeSync; tests pass one that fails). */
export type FdWrite = (fd: number, buf: Buffer, offset: number) => number;

/** Opens `target` (a path, or a stream for standard output) for an export. */
export function openOutput(
  target: string | Writable,
  writeFd: FdWrite = (fd, buf, off) => writeSync(fd, buf, off),
  /** How long to wait for a reader of a named pipe (FIFO_WAIT_MS). */
  fifoWaitMs = FIFO_WAIT_MS,
): Output {
  if (typeof target !== 'string') return streamOutput(target);
  let path = target;
  let st = lstatOrNull(path);
  if (st?.isSymbolicLink()) {
    try {
      path = realpathSync(target);
      st = lstatOrNull(path);
    } catch (e) {
      if (codeOf(e) === 'ELOOP') throw new FerCleanError(`${target}: symlink loop`);
      // A dangling link: writing through it creates what it points to.
      return directOutput(target, target, writeFd);
    }
  }
  if (st?.isDirectory()) throw new FerCleanError(`${target}: is a folder, not a file`);
  if (st && !st.isFile()) return directOutput(target, path, writeFd, fifoWaitMs); // device, fifo, socket
  return fileOutput(target, path, st, writeFd);
}

/**
 * Writes `data` as the whole content of `target` with openOutput's rules (a file replaced atomically keeping its
 * mode and links, a symlink written through, a device or pipe written to): for files made in one piece, such as a
 * contact sheet.
 */
export async function writeOutput(target: string, data: string | Uint8Array): Promise<void> {
  const output = openOutput(target);
  try {
    await output.write(data);
    await output.commit();
  } catch (e) {
    output.abort();
    throw e;
  }
}

/** Writes straight into an open file descriptor. */
function fdWriter(fd: number, path: string, writeFd: FdWrite): (data: string | Uint8Array) => void {
  return (data) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (let off = 0; off < buf.length; ) {
      try {
        off += writeFd(fd, buf, off);
      } catch (e) {
        if (codeOf(e) === 'EAGAIN') continue; // a non-blocking pipe that is full: try again
        throw cannot(path, e);
      }
    }
  };
}

/** How long an export waits for a process to read a named pipe it was given before it says no one does. */
export const FIFO_WAIT_MS = 10_000;

/**
 * Opens a device, fifo or socket for writing. A fifo's open would block until a reader comes, forever if none does:
 * it is opened without blocking, retried every 50 ms while no one reads it, and refused after `waitMs`.
 */
function openDirect(shown: string, path: string, waitMs: number): number {
  let fifo = false;
  try {
    fifo = statSync(path).isFIFO();
  } catch {
    // a dangling link or a path not there yet: open() says what is wrong
  }
  if (!fifo) {
    try {
      return openSync(path, 'w');
    } catch (e) {
      if (codeOf(e) === 'ENXIO') throw new OutputError(shown, 'a socket or a device with nothing behind it');
      throw cannot(shown, e);
    }
  }
  const deadline = Date.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    let probe: number;
    try {
      probe = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      if (codeOf(e) !== 'ENXIO') throw cannot(shown, e);
      if (Date.now() >= deadline) throw new OutputError(shown, `no process is reading this named pipe (waited ${waitMs / 1000} s)`);
      Atomics.wait(pause, 0, 0, 50);
      continue;
    }
    try {
      return openSync(path, 'w'); // a reader is there: this open does not block, and writes wait for the reader
    } catch (e) {
      throw cannot(shown, e);
    } finally {
      closeSync(probe);
    }
  }
}

function directOutput(shown: string, path: string, writeFd: FdWrite, fifoWaitMs = FIFO_WAIT_MS): Output {
  const fd = openDirect(shown, path, fifoWaitMs);
  const write = fdWriter(fd, shown, writeFd);
  let open = true;
  const close = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    write: async (text) => write(text),
    commit: async () => close(),
    abort: () => {
      try {
        close();
      } catch {
        // closing after a failed write: the first error is the one reported
      }
    },
  };
}

/** The temp file names fileOutput gives `path`'s new content: `.NAME.tmp-PID-MS`. */
const tempName = (path: string, pid: number, ms: number): string => join(dirname(path), `.${basename(path)}.tmp-${pid}-${ms}`);

/** Whether process `pid` is running (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return codeOf(e) === 'EPERM'; // running, but not ours to signal
  }
}

/**
 * Removes the temp files an earlier write to `path` left when it was killed (Ctrl-C, kill -9, a crash): those of
 * processes no longer running. A live process's temp file is an export in progress and is left alone.
 */
export function removeStaleTemps(path: string): string[] {
  const prefix = `.${basename(path)}.tmp-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return removed; // an unreadable folder: the write itself will say what is wrong
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-(\d+)$/.exec(name.slice(prefix.length));
    if (!m || alive(Number(m[1]))) continue;
    const file = join(dirname(path), name);
    try {
      if (lstatSync(file).isFile()) {
        rmSync(file, { force: true });
        removed.push(file);
      }
    } catch {
      // gone meanwhile, or not ours to remove: harmless
    }
  }
  return removed;
}

function fileOutput(shown: string, path: string, st: Stats | null, writeFd: FdWrite): Output {
  removeStaleTemps(path);
  const tmp = tempName(path, process.pid, Date.now());
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', st ? st.mode & 0o7777 : 0o666);
  } catch (e) {
    throw cannot(shown, e);
  }
  let open = true;
  const write = fdWriter(fd, shown, writeFd);
  const cleanup = (): void => {
    if (open) {
      try {
        closeSync(fd);
      } catch {
        // already failing
      }
    }
    open = false;
    rmSync(tmp, { force: true });
  };
  return {
    write: async (text) => {
      try {
        write(text);
      } catch (e) {
        cleanup();
        throw e;
      }
    },
    commit: async () => {
      try {
        if (st) {
          // the umask may have narrowed the mode given to open(); owner only when allowed (root)
          fchmodSync(fd, st.mode & 0o7777);
          try {
            if (fstatSync(fd).uid !== st.uid || fstatSync(fd).gid !== st.gid) fchownSync(fd, st.uid, st.gid);
          } catch {
            // not allowed to give the file away: it stays ours
          }
        }
        fsyncSync(fd);
        closeSync(fd);
        open = false;
        if (st && st.nlink > 1) copyBack(tmp, path, shown);
        else renameSync(tmp, path);
      } catch (e) {
        cleanup();
        throw e instanceof FerCleanError ? e : cannot(shown, e);
      }
      rmSync(tmp, { force: true });
    },
    abort: cleanup,
  };
}

/** Copies the finished temp file into `path`'s own inode (keeping its hard links), then syncs it. */
function copyBack(tmp: string, path: string, shown: string): void {
  const src = openSync(tmp, 'r');
  let dst: number;
  try {
    dst = openSync(path, 'r+');
  } catch (e) {
    closeSync(src);
    throw cannot(shown, e);
  }
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    for (;;) {
      const n = readSync(src, buf, 0, buf.length, pos);
      if (n === 0) break;
      for (let off = 0; off < n; ) off += writeSync(dst, buf, off, n - off, pos + off);
      pos += n;
    }
    // shorten only once the new content is in: a failure above leaves the old tail, never an empty file
    ftruncateSync(dst, pos);
    fsyncSync(dst);
  } catch (e) {
    throw cannot(shown, e);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

function streamOutput(stream: Writable): Output {
  let failed: Error | null = null;
  const onError = (e: Error): void => void (failed ??= e);
  stream.on('error', onError);
  const check = (): void => {
    if (failed) throw cannot('standard output', failed);
  };
  return {
    write: async (text) => {
      check();
      if (!stream.write(text)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('drain', done);
            stream.off('error', done);
            stream.off('close', done);
            resolve();
          };
          stream.on('drain', done);
          stream.on('error', done);
          stream.on('close', done);
        });
      }
      check();
    },
    commit: async () => {
      check();
      stream.off('error', onError);
    },
    abort: () => void stream.off('error', onError),
  };
}
