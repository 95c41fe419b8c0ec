// inspectImage reads a plain PNG's size and channels from its header instead of asking sharp (a fifth of the cost of
// a small face): it must say exactly what sharp's metadata() says, and leave every other image to sharp.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { inspectImage, plainPngHeader } from '../src/ingest/images.js';
import { fixture, tempDir } from './helpers.js';

const asSharpSays = async (bytes: Buffer) => {
  const m = await sharp(bytes).metadata();
  return { format: m.format, pages: m.pages, width: m.width, height: m.height, channels: m.channels, space: m.space, autoOrient: m.autoOrient };
};

describe('plainPngHeader', () => {
  it("says what sharp's metadata() says of every PNG fixture face (8-bit grey)", async () => {
    const dir = fixture('ferplus', 'images', 'train');
    const files = readdirSync(dir).filter((f) => f.endsWith('.png')).slice(0, 40);
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const bytes = readFileSync(join(dir, f));
      expect(plainPngHeader(bytes), f).toEqual(await asSharpSays(bytes));
    }
  });

  it('grey+alpha, RGB and RGBA PNGs: the same as sharp; palette, 16-bit, JPEG and cut files: left to sharp', async () => {
    const photo = readFileSync(fixture('photos', 'one-a.jpg'));
    const rgb = await sharp(photo).resize(60, 80).png().toBuffer();
    const rgba = await sharp(photo).resize(60, 80).ensureAlpha().png().toBuffer();
    const greyAlpha = await sharp(photo).resize(60, 80).toColourspace('b-w').ensureAlpha().png().toBuffer();
    for (const [name, bytes, channels] of [['rgb', rgb, 3], ['rgba', rgba, 4], ['grey+alpha', greyAlpha, 2]] as const) {
      const h = plainPngHeader(bytes);
      expect(h, name).toEqual(await asSharpSays(bytes));
      expect(h?.channels, name).toBe(channels);
    }
    expect(plainPngHeader(await sharp(photo).resize(60, 80).png({ palette: true }).toBuffer())).toBeUndefined();
    expect(plainPngHeader(await sharp(photo).resize(60, 80).toColourspace('rgb16').png().toBuffer())).toBeUndefined();
    expect(plainPngHeader(photo)).toBeUndefined();
    expect(plainPngHeader(rgb.subarray(0, 40))).toBeUndefined(); // the chunk list runs off the end
    expect(plainPngHeader(Buffer.from('not a png at all, not a png at all, not a png'))).toBeUndefined();
  });

  it('a PNG with an EXIF orientation is left to sharp, and inspectImage still turns its frame', async () => {
    const t = tempDir();
    try {
      const rotated = await sharp(readFileSync(fixture('photos', 'one-a.jpg'))).resize(60, 80).png().withMetadata({ orientation: 6 }).toBuffer();
      expect(plainPngHeader(rotated)).toBeUndefined();
      const file = join(t.dir, 'rotated.png');
      writeFileSync(file, rotated);
      const r = await inspectImage(file);
      expect(r.ok && [r.info.width, r.info.height, r.info.oriented.width, r.info.oriented.height]).toEqual([60, 80, 80, 60]);
    } finally {
      t.cleanup();
    }
  });

  it('a PNG cut after its header is still refused by the full decode', async () => {
    const t = tempDir();
    try {
      const bytes = readFileSync(join(fixture('ferplus', 'images', 'train'), readdirSync(fixture('ferplus', 'images', 'train'))[0]!));
      const file = join(t.dir, 'cut.png');
      writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
      const r = await inspectImage(file);
      expect(r).toEqual({ ok: false, error: expect.stringMatching(/^cannot decode image: corrupt or truncated data/) });
    } finally {
      t.cleanup();
    }
  });
});
