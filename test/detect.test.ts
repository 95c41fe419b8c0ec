import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { createDetector, isTightCrop, squareBox, type FaceDetector } from '../src/features/detect.js';
import { boxProblem } from '../src/features/facebox.js';
import { flaggedImages } from '../src/features/locate.js';
import { ingestWithFaces } from '../src/ingest/faces.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, tempDir } from './helpers.js';

describe('auto rule and boxes', () => {
  it('takes small, nearly square images for face crops and everything else for photos', () => {
    expect(isTightCrop(48, 48)).toBe(true); // FER2013
    expect(isTightCrop(100, 100)).toBe(true); // RAF-DB aligned
    expect(isTightCrop(256, 220)).toBe(true);
    expect(isTightCrop(257, 257)).toBe(false); // larger than a face crop
    expect(isTightCrop(200, 120)).toBe(false); // too wide for a face crop
    expect(isTightCrop(300, 400)).toBe(false);
  });

  it('squares a box around its centre and keeps it inside the image', () => {
    expect(squareBox({ x: 10, y: 20, w: 30, h: 50 }, 200, 200)).toEqual({ x: 0, y: 20, w: 50, h: 50 });
    expect(squareBox({ x: 90, y: 90, w: 30, h: 30 }, 100, 100)).toEqual({ x: 70, y: 70, w: 30, h: 30 });
    const big = squareBox({ x: -20, y: 5, w: 300, h: 80 }, 120, 90);
    expect(boxProblem(big, 120, 90)).toBeNull();
    expect(big.w).toBe(90);
  });
});

describe('face-api detection on real photos', () => {
  it('finds one face in a portrait, none in a faceless region and three in a group photo', { timeout: 120_000 }, async () => {
    const detector = await createDetector({ backend: 'wasm' });
    const one = await detector.detect(fixture('photos', 'one-a.jpg'));
    expect(one.faces).toHaveLength(1);
    const meta = await sharp(fixture('photos', 'one-a.jpg')).metadata();
    expect([one.width, one.height]).toEqual([meta.width, meta.height]);
    const box = one.faces[0]!.box;
    expect(boxProblem(box, one.width, one.height)).toBeNull();
    expect(box.w).toBe(box.h);
    // the face of one-a.jpg is in the upper middle of the picture, about a third of its width
    expect(box.x + box.w / 2).toBeGreaterThan(0.3 * one.width);
    expect(box.x + box.w / 2).toBeLessThan(0.7 * one.width);
    expect(box.y + box.h / 2).toBeLessThan(0.5 * one.height);
    expect(box.w).toBeGreaterThan(0.2 * one.width);
    expect((await detector.detect(fixture('photos', 'none-b.jpg'))).faces).toHaveLength(0);
    expect((await detector.detect(fixture('photos', 'group-a.jpg'))).faces).toHaveLength(3);
  });
});

describe('close-ups (issue 19): a face that fills the frame', () => {
  it('is found by the padded second look, where the plain pass finds nothing', { timeout: 120_000 }, async () => {
    const t = tempDir();
    try {
      const detector = await createDetector({ backend: 'wasm' });
      const plain = await createDetector({ backend: 'wasm', closeUps: false });
      // real close-ups: each portrait cut tightly to its face (the face box, or its inner 90%), enlarged to the
      // size of the scraped close-up the issue reports (265 x 287 px: above the tight-crop rule, so it is detected)
      for (const name of ['one-a.jpg', 'one-b.jpg', 'one-c.jpg']) {
        const face = (await detector.detect(fixture('photos', name))).faces[0]!.box;
        for (const inner of [1, 0.9]) {
          const side = Math.round(face.w * inner);
          const file = join(t.dir, `close-${inner}-${name}`);
          await sharp(fixture('photos', name))
            .extract({ left: Math.round(face.x + (face.w - side) / 2), top: Math.round(face.y + (face.h - side) / 2), width: side, height: side })
            .resize(265, 287, { fit: 'fill' })
            .jpeg({ quality: 90 })
            .toFile(file);
          expect(isTightCrop(265, 287)).toBe(false);
          expect((await plain.detect(file)).faces, `${name} ${inner}: plain pass`).toHaveLength(0);
          const found = await detector.detect(file);
          expect(found.faces, `${name} ${inner}`).toHaveLength(1);
          const box = found.faces[0]!.box;
          expect(boxProblem(box, found.width, found.height)).toBeNull();
          // the face fills most of the frame: its box is at least 80% of the image's width
          expect(box.w, `${name} ${inner}`).toBeGreaterThanOrEqual(0.8 * found.width);
        }
      }
      // a photo without a face stays without one after the second look
      expect((await detector.detect(fixture('photos', 'none-a.jpg'))).faces).toHaveLength(0);
      expect((await detector.detect(fixture('photos', 'none-b.jpg'))).faces).toHaveLength(0);
    } finally {
      t.cleanup();
    }
  });
});

/** A detector that answers from a table, for the bookkeeping around detection. */
function fakeDetector(faces: Record<string, number>): FaceDetector & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    async detect(file) {
      const name = file.split('/').pop()!;
      seen.push(name);
      const n = faces[name] ?? 1;
      return { width: 300, height: 400, faces: Array.from({ length: n }, (_, k) => ({ box: { x: 10 * k, y: 20, w: 100, h: 100 }, score: 0.9 })) };
    },
  };
}

function photoCsv(dir: string, names: string[]): string {
  const csv = join(dir, 'photos.csv');
  writeFileSync(csv, ['path,label', ...names.map((n) => `${n},happiness`)].join('\n') + '\n');
  return csv;
}

describe('ingest with face location', () => {
  it('writes nothing when an image has no face or several, unless --skip-bad, which keeps them flagged', async () => {
    const t = tempDir();
    const db = openStore(join(t.dir, 'p.db'));
    try {
      const csv = photoCsv(t.dir, ['one-a.jpg', 'none-a.jpg', 'group-a.jpg']);
      const opts = { source: csv, images: fixture('photos') };
      const detector = fakeDetector({ 'none-a.jpg': 0, 'group-a.jpg': 3 });
      const failure = await ingestWithFaces(db, opts, { mode: 'auto', detector }).catch((e: Error & { details: string[] }) => e);
      expect(failure).toBeInstanceOf(Error);
      expect((failure as { details: string[] }).details).toEqual([
        'none-a.jpg: no-face (no face found)',
        'group-a.jpg: several-faces (3 faces (scores 0.90, 0.90, 0.90))',
      ]);
      expect(db.inTransaction).toBe(false);
      expect((db.prepare(`SELECT count(*) AS n FROM images`).get() as { n: number }).n).toBe(0);
      expect((db.prepare(`SELECT count(*) AS n FROM datasets`).get() as { n: number }).n).toBe(0);

      const r = await ingestWithFaces(db, { ...opts, skipBad: true }, { mode: 'auto', detector });
      expect(r.faces).toMatchObject({ examined: 3, cropped: 1, tight: 0 });
      const rows = db.prepare(`SELECT path, crop_x, crop_w, crop_source, quality FROM images ORDER BY path`).all();
      expect(rows).toEqual([
        { path: 'group-a.jpg', crop_x: null, crop_w: null, crop_source: null, quality: 'several-faces' },
        { path: 'none-a.jpg', crop_x: null, crop_w: null, crop_source: null, quality: 'no-face' },
        { path: 'one-a.jpg', crop_x: 0, crop_w: 100, crop_source: 'detected', quality: null },
      ]);
      expect(flaggedImages(db, r.ingest.dataset.id)).toEqual([
        { path: 'group-a.jpg', quality: 'several-faces' },
        { path: 'none-a.jpg', quality: 'no-face' },
      ]);
      // a re-ingest looks at no image again
      const again = await ingestWithFaces(db, { ...opts, skipBad: true }, { mode: 'auto', detector });
      expect(again.faces).toMatchObject({ examined: 0, kept: 3 });
      expect(detector.seen).toHaveLength(6);
    } finally {
      db.close();
      t.cleanup();
    }
  });

  it('auto leaves face crops alone, always examines them, never examines nothing', async () => {
    for (const [mode, examined] of [['auto', 0], ['always', 4], ['never', 0]] as const) {
      const t = tempDir();
      const db = openStore(join(t.dir, 'f.db'));
      try {
        const csv = join(t.dir, 'faces.csv');
        const lines = readFileSync(fixture('csv', 'labels.csv'), 'utf8').trim().split('\n').slice(0, 5);
        writeFileSync(csv, lines.join('\n') + '\n');
        const detector = fakeDetector({});
        const r = await ingestWithFaces(db, { source: csv, images: fixture('csv'), labelEncoding: 'fer2013' }, { mode, detector });
        expect(r.faces.examined, mode).toBe(examined);
        expect(r.faces.tight, mode).toBe(mode === 'auto' ? 4 : 0);
        expect(detector.seen).toHaveLength(examined);
      } finally {
        db.close();
        t.cleanup();
      }
    }
  });

  it('CLI: real photos among FER faces are detected and cropped, the rest named by ingest, embed and report', { timeout: 180_000 }, async () => {
    const t = tempDir();
    try {
      // FER2013 faces (tight crops) and three photos under one root
      const faces = readFileSync(fixture('csv', 'labels.csv'), 'utf8').trim().split('\n').slice(1, 25);
      const csv = join(t.dir, 'mixed.csv');
      writeFileSync(
        csv,
        ['file,emotion,usage', ...faces.map((l) => `csv/${l}`), 'photos/one-a.jpg,3,train', 'photos/none-b.jpg,6,train', 'photos/group-a.jpg,3,train'].join('\n') + '\n',
      );
      const db = join(t.dir, 'mixed.db');
      const base = ['--db', db];
      const io = captureIo(t.dir);
      expect(await run(['ingest', csv, '--images', fixture(), '--label-encoding', 'fer2013', ...base], io)).toBe(1);
      expect(io.stderr.text).toMatch(/photos\/none-b\.jpg: no-face/);
      expect(io.stderr.text).toMatch(/photos\/group-a\.jpg: several-faces \(3 faces/);
      expect(existsSync(db)).toBe(false);

      const ok = captureIo(t.dir);
      expect(await run(['ingest', csv, '--images', fixture(), '--label-encoding', 'fer2013', '--skip-bad', ...base], ok), ok.stderr.text).toBe(0);
      expect(ok.stdout.text).toMatch(/3 examined by the detector, 1 cropped to their one face; 24 taken for face crops already/);
      expect(ok.stderr.text).toMatch(/flagged 2 images/);

      const emb = captureIo(t.dir);
      expect(await run(['embed', '--backend', 'wasm', '--workers', '0', ...base], emb), emb.stderr.text).toBe(0);
      expect(emb.stdout.text).toMatch(/computed 25,/);
      expect(emb.stdout.text).toMatch(/left out 2 images flagged at ingest/);

      const tr = captureIo(t.dir);
      expect(await run(['train', '--backend', 'wasm', '--epochs', '2', ...base], tr), tr.stderr.text).toBe(0);
      const rep = captureIo(t.dir);
      const sheet = join(t.dir, 'sheet.png');
      expect(await run(['report', '--sheet', sheet, ...base], rep), rep.stderr.text).toBe(0);
      expect(rep.stdout.text).toMatch(
        /2 flagged images of the dataset \(each once, with all its reasons; nothing deleted\):\n {2}photos\/group-a\.jpg: several-faces \(flagged at ingest, not embedded\)\n {2}photos\/none-b\.jpg: no-face \(flagged at ingest, not embedded\)/,
      );
      expect((await sharp(sheet).metadata()).format).toBe('png');
      const s = openStore(db, { mustExist: true });
      const photo = s.prepare(`SELECT crop_w, crop_h, crop_source FROM images WHERE path = 'photos/one-a.jpg'`).get() as Record<string, unknown>;
      const trained = (s.prepare(`SELECT count(*) AS n FROM run_images`).get() as { n: number }).n;
      s.close();
      expect(photo['crop_source']).toBe('detected');
      expect(photo['crop_w']).toBe(photo['crop_h']);
      expect(trained).toBe(25);
    } finally {
      t.cleanup();
    }
  });
});
