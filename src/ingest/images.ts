import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';

export interface ImageInfo {
  sha256: string;
  width: number;
  height: number;
  channels: number;
}

export type ImageResult = { ok: true; info: ImageInfo } | { ok: false; error: string };

// Decoding runs on libvips' own threads; keep its cache off so memory stays flat across a large dataset.
sharp.cache(false);

/** Reads, hashes and fully decodes one image: a truncated or corrupt file is reported, not accepted. */
export async function inspectImage(file: string): Promise<ImageResult> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, error: code === 'ENOENT' ? 'image file not found' : `cannot read image (${code ?? (e as Error).message})` };
  }
  if (bytes.length === 0) return { ok: false, error: 'image file is empty' };
  try {
    const image = sharp(bytes, { failOn: 'truncated' });
    const meta = await image.metadata(); // channels as stored (sharp's raw output would be sRGB)
    await image.raw().toBuffer(); // a full decode: catches truncated and corrupt data the header hides
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { ok: true, info: { sha256, width: meta.width!, height: meta.height!, channels: meta.channels! } };
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!.trim();
    return { ok: false, error: `cannot decode image: ${msg}` };
  }
}

/** Runs `fn` over `items` with at most `concurrency` in flight, keeping results in order. */
export async function mapPool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
  onDone?: (done: number) => void,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i]!, i);
      done++;
      onDone?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return out;
}
