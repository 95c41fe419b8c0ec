/**
 * Opening a file that a user or a data file named: the one way fer-clean reads such a file.
 *
 * A path in a CSV, an argument or a folder listing can name anything: a named pipe (which blocks the reader until a
 * writer comes, forever), a character device (endless bytes), a socket, a folder, or a symlink to any of these.
 * readChecked opens the path (following symlinks) without blocking, checks with one fstat of the open descriptor that
 * it is a regular file no larger than the format's cap, and reads at most that many bytes. It costs what
 * readFileSync costs (open, fstat, read, close): no extra stat, no extra read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { FerCleanError } from './errors.js';

const MiB = 1024 * 1024;

/**
 * The largest file fer-clean reads for each kind of input: far above any real one (an AffectNet photo is a few MB,
 * FER2013's CSV 290 MB, a million-row labels CSV about 100 MB), far below what would take the machine down.
 */
export const FILE_LIMITS = {
  /** An image file (ingest, embed, review, face detection). */
  image: 256 * MiB,
  /** A dataset's source CSV or list file (ingest: csv, ferplus, affectnet, fer2013, RAF-DB). */
  source: 1024 * MiB,
  /** A decisions CSV (decide). */
  decisions: 256 * MiB,
} as const;

export type FileKind = keyof typeof FILE_LIMITS;

/**
 * The most pixels an image may have (sharp's limitInputPixels wherever fer-clean decodes one): a 45-megapixel camera
 * photo fits; a small PNG that claims 16000x16000 (a decompression bomb: 750 KB that decode to 768 MB) does not.
 */
export const MAX_IMAGE_PIXELS = 50_000_000;

/** A file that was refused or could not be read: `reason` says why in a few words, without the path. */
export class FileReadError extends FerCleanError {
  constructor(
    readonly path: string,
    readonly reason: string,
    /** The errno code when the system refused (ENOENT, EACCES, ...); undefined when fer-clean refused. */
    readonly code?: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

/** What a path that is not a regular file is, in words. */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a named pipe (fifo)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const notRegular = (path: string, st: Stats): FileReadError => new FileReadError(path, `is ${kindOf(st)}, not a regular file`);

const sizeText = (n: number): string => (n >= MiB ? `${(n / MiB).toFixed(n >= 10 * MiB ? 0 : 1)} MiB` : `${n} bytes`);

function openError(path: string, e: unknown): FileReadError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENXIO') {
    // open() of a socket (or a device with no driver): name what it is
    try {
      return notRegular(path, statSync(path));
    } catch {
      // gone meanwhile: the code says enough
    }
  }
  const reason =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'ELOOP'
          ? 'symlink loop'
          : code === 'ENOTDIR'
            ? 'no such file (a part of the path is not a folder)'
            : `cannot read (${code ?? (e as Error).message})`;
  return new FileReadError(path, reason, code);
}

export interface ReadOptions {
  /** Read at most this many bytes from the start (e.g. a header line), whatever the file's size. */
  head?: number;
}

/**
 * The bytes of `path`, a regular file (after following symlinks) of at most FILE_LIMITS[kind] bytes. Throws a
 * FileReadError naming the path otherwise: a fifo, device, socket or folder is refused in bounded time (the open does
 * not block and nothing is read from it), a larger file by its size. With `head`, reads only the first `head` bytes
 * (any size allowed).
 */
export function readChecked(path: string, kind: FileKind, opts: ReadOptions = {}): Buffer {
  let fd: number;
  try {
    // O_NONBLOCK: opening a fifo waits for a writer otherwise; O_NOCTTY: a terminal device never becomes ours
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw openError(path, e);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, st);
    const cap = FILE_LIMITS[kind];
    if (opts.head === undefined && st.size > cap) {
      throw new FileReadError(path, `is ${sizeText(st.size)}, more than the ${sizeText(cap)} a${kind === 'image' ? 'n' : ''} ${kind} file may be`);
    }
    // the size at open time bounds the read: a file that grows meanwhile is read as it was
    const want = Math.min(st.size, opts.head ?? cap);
    const buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      let n: number;
      try {
        n = readSync(fd, buf, got, want - got, got);
      } catch (e) {
        throw new FileReadError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, (e as NodeJS.ErrnoException).code);
      }
      if (n === 0) break; // shrank meanwhile
      got += n;
    }
    return got === want ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that `path` is a regular file (after following symlinks) without reading it: for a path that another
 * library will open by name (SQLite). A path that does not exist passes (the caller decides whether to create it).
 */
export function checkRegularOrAbsent(path: string): void {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw openError(path, e);
  }
  if (!st.isFile()) throw notRegular(path, st);
}
