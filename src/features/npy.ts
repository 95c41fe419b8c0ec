/**
 * NumPy's .npy format (numpy.lib.format, versions 1-3), read in chunks of rows so that a file larger than memory can
 * be streamed. Only what fer-clean imports is accepted: a 2-D C-order array of float16, float32 or float64.
 * (npyjs, the maintained npm reader, parses a whole file held in one ArrayBuffer and so cannot stream a 2 GB file;
 * this module reads only the header itself and hands back rows.)
 */
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { FerCleanError } from '../errors.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

export type NpyDtype = 'float16' | 'float32' | 'float64';

export interface NpyHeader {
  dtype: NpyDtype;
  littleEndian: boolean;
  /** Bytes per value. */
  itemSize: number;
  rows: number;
  cols: number;
  /** Byte offset of the first value. */
  dataOffset: number;
}

const DTYPES: Record<string, { dtype: NpyDtype; itemSize: number }> = {
  f2: { dtype: 'float16', itemSize: 2 },
  f4: { dtype: 'float32', itemSize: 4 },
  f8: { dtype: 'float64', itemSize: 8 },
};

/**
 * Parses the header at the start of `head` (the file's first bytes, at least 12 + the header length). `name` is used
 * in the errors. Checks the magic string, the version, the dtype (float16/32/64, either byte order), C order and a
 * 2-D shape; throws FerCleanError naming the file and what is wrong.
 */
export function parseNpyHeader(head: Buffer, name: string): NpyHeader & { headerLength: number } {
  if (head.length < 10 || !head.subarray(0, 6).equals(MAGIC)) {
    throw new FerCleanError(`${name}: not a .npy file (it does not start with the magic string \\x93NUMPY)`);
  }
  const major = head[6]!;
  if (major < 1 || major > 3) throw new FerCleanError(`${name}: .npy format version ${major}.${head[7]} is not supported (1, 2 or 3)`);
  const lenBytes = major === 1 ? 2 : 4;
  if (head.length < 8 + lenBytes) throw new FerCleanError(`${name}: .npy header is cut short`);
  const headerLength = major === 1 ? head.readUInt16LE(8) : head.readUInt32LE(8);
  const dataOffset = 8 + lenBytes + headerLength;
  if (head.length < dataOffset) throw new FerCleanError(`${name}: .npy header is cut short (${headerLength} bytes announced)`);
  const text = head.subarray(8 + lenBytes, dataOffset).toString(major === 3 ? 'utf8' : 'latin1');
  const field = (key: string, pattern: string): string => {
    const m = new RegExp(`['"]${key}['"]\\s*:\\s*(${pattern})`).exec(text);
    if (!m) throw new FerCleanError(`${name}: .npy header has no readable '${key}' (header: ${text.trim()})`);
    return m[1]!;
  };
  const descr = field('descr', `'[^']*'|"[^"]*"`).slice(1, -1);
  const fortran = field('fortran_order', 'True|False');
  const shapeText = field('shape', '\\([^)]*\\)');
  const dm = /^([<>|=])?([a-z])(\d+)$/.exec(descr);
  const kind = dm ? DTYPES[`${dm[2]}${dm[3]}`] : undefined;
  if (!dm || !kind) {
    throw new FerCleanError(`${name}: .npy dtype '${descr}' is not supported: save the array as float16, float32 or float64 (arr.astype('float32'))`);
  }
  if (fortran === 'True') {
    throw new FerCleanError(`${name}: .npy array is in Fortran (column-major) order: save np.ascontiguousarray(arr) instead`);
  }
  const shape = shapeText
    .slice(1, -1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.length !== 2 || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new FerCleanError(`${name}: .npy shape ${shapeText} is not 2-D: expected (rows, dims)`);
  }
  return {
    dtype: kind.dtype,
    littleEndian: dm[1] !== '>',
    itemSize: kind.itemSize,
    rows: shape[0]!,
    cols: shape[1]!,
    dataOffset,
    headerLength,
  };
}

/** IEEE 754 half-precision bits to a number (numpy float16). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal (and zero)
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** An open .npy file: its header, and its rows in order, a chunk at a time. */
export interface NpyReader {
  header: NpyHeader;
  /** Yields blocks of whole rows: `values` is rows x cols, row-major, as float64; `first` is the index of its first row. */
  blocks(rowsPerBlock?: number): AsyncGenerator<{ first: number; rows: number; values: Float64Array }>;
  close(): Promise<void>;
}

/**
 * Opens a .npy file and checks its header and that its size matches rows x cols values. Rows are then read in
 * blocks (default: about 4 MB at a time), so memory stays bounded whatever the file's size.
 */
export async function openNpy(path: string): Promise<NpyReader> {
  const name = basename(path);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new FerCleanError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new FerCleanError(`${path}: not a regular file`);
    const first = Buffer.alloc(Math.min(st.size, 12));
    await fh.read(first, 0, first.length, 0);
    // Read the whole header (its length is in the first 12 bytes), then parse it.
    let need = 12;
    if (first.length >= 10 && first.subarray(0, 6).equals(MAGIC)) {
      need = first[6] === 1 ? 10 + first.readUInt16LE(8) : first.length >= 12 ? 12 + first.readUInt32LE(8) : 12;
    }
    const head = Buffer.alloc(Math.min(need, st.size));
    await fh.read(head, 0, head.length, 0);
    const header = parseNpyHeader(head, name);
    const expected = header.dataOffset + header.rows * header.cols * header.itemSize;
    if (st.size !== expected) {
      throw new FerCleanError(
        `${name}: .npy file is ${st.size} bytes but its header says ${header.rows} x ${header.cols} ${header.dtype} (${expected} bytes): the file is ${st.size < expected ? 'cut short' : 'longer than its header says'}`,
      );
    }
    return {
      header,
      async *blocks(rowsPerBlock) {
        const rowBytes = header.cols * header.itemSize;
        const per = Math.max(1, rowsPerBlock ?? Math.floor((4 << 20) / Math.max(1, rowBytes)));
        const buf = Buffer.alloc(per * rowBytes);
        for (let r = 0; r < header.rows; r += per) {
          const n = Math.min(per, header.rows - r);
          const bytes = n * rowBytes;
          let got = 0;
          while (got < bytes) {
            const { bytesRead } = await fh.read(buf, got, bytes - got, header.dataOffset + r * rowBytes + got);
            if (bytesRead === 0) throw new FerCleanError(`${name}: .npy file ended early at row ${r + 1}`);
            got += bytesRead;
          }
          yield { first: r, rows: n, values: decode(buf.subarray(0, bytes), header) };
        }
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** The values of a block of raw bytes, as float64. */
function decode(bytes: Buffer, h: NpyHeader): Float64Array {
  const n = bytes.length / h.itemSize;
  const out = new Float64Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = h.littleEndian;
  if (h.dtype === 'float16') for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, le));
  else if (h.dtype === 'float32') for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, le);
  else for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, le);
  return out;
}
