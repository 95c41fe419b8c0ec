// A changed image (new bytes at the same path) gets its face detected again on re-ingest, its old embeddings stop
// counting, and ingest and report say how many changed.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { createDetector, type FaceDetector } from '../src/features/detect.js';
import { ingestWithFaces } from '../src/ingest/faces.js';
import { openStore, nowIso } from '../src/store/db.js';
import { cliRunner, fixture, useStore, useTempDir } from './helpers.js';

/** A detector that answers from a table keyed by the file's bytes' fixture name, counting what it examines. */
function tableDetector(table: Map<string, number>, current: Map<string, string>): FaceDetector & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    async detect(file) {
      const name = file.split('/').pop()!;
      seen.push(name);
      const n = table.get(current.get(name)!) ?? 1;
      // the box depends on which picture is there now, as a real detector's would
      const x = current.get(name)!.charCodeAt(4);
      return { width: 300, height: 400, faces: Array.from({ length: n }, () => ({ box: { x, y: 20, w: 100, h: 100 }, score: 0.9 })) };
    },
  };
}

describe('re-ingest of an image with new pixels', () => {
  const t = useTempDir();
  const store = useStore(t, (dir) => ({ db: openStore(join(dir, 'c.db')) }));
  /** Which fixture photo each file of the temp folder holds now. */
  const current = new Map<string, string>();
  const put = (name: string, photo: string) => {
    copyFileSync(fixture('photos', photo), join(t.dir, name));
    current.set(name, photo);
  };
  beforeEach(() => {
    writeFileSync(join(t.dir, 'labels.csv'), 'path,label\na.jpg,happiness\nb.jpg,sadness\nc.jpg,anger\n');
    put('a.jpg', 'one-a.jpg');
    put('b.jpg', 'one-b.jpg');
    put('c.jpg', 'none-a.jpg');
  });

  const opts = () => ({ source: join(t.dir, 'labels.csv'), skipBad: true });
  const rows = () =>
    store.db.prepare(`SELECT path, crop_x, crop_source, quality, pixels_changed_at IS NOT NULL AS changed FROM images ORDER BY path`).all();
  const embeddings = () => (store.db.prepare(`SELECT image_id FROM embeddings ORDER BY image_id`).all() as { image_id: number }[]).map((r) => r.image_id);
  const embedAll = () => {
    const now = nowIso();
    const ins = store.db.prepare(
      `INSERT INTO embeddings (image_id, backbone, backbone_version, dim, vector, backend, created_at) VALUES (?, 'faceexpr', 'v', 2, ?, 'test', ?)`,
    );
    for (const { id } of store.db.prepare(`SELECT id FROM images WHERE quality IS NULL`).all() as { id: number }[]) {
      ins.run(id, Buffer.from(new Float32Array([1, 2]).buffer), now);
    }
  };

  it('drops the detected box, detection flags and embeddings of changed images only, and says how many changed', async () => {
    const detector = tableDetector(new Map([['none-a.jpg', 0]]), current);
    const first = await ingestWithFaces(store.db, opts(), { mode: 'auto', detector });
    expect(first.faces).toMatchObject({ examined: 3, cropped: 2 });
    expect(first.ingest.newPixels).toBe(0);
    embedAll();
    expect(embeddings()).toEqual([1, 2]);

    // same bytes: nothing examined again, nothing dropped
    const same = await ingestWithFaces(store.db, opts(), { mode: 'auto', detector });
    expect([same.ingest.unchanged, same.ingest.newPixels, same.faces.examined]).toEqual([3, 0, 0]);
    expect(embeddings()).toEqual([1, 2]);

    // a.jpg now shows another face; c.jpg (no face before) now shows one; b.jpg is as it was
    put('a.jpg', 'one-c.jpg');
    put('c.jpg', 'one-b.jpg');
    const again = await ingestWithFaces(store.db, opts(), { mode: 'auto', detector });
    expect([again.ingest.updated, again.ingest.newPixels, again.ingest.unchanged]).toEqual([2, 2, 1]);
    expect(again.faces).toMatchObject({ examined: 2, cropped: 2, kept: 1 });
    expect(detector.seen.slice(-2)).toEqual(['a.jpg', 'c.jpg']);
    expect(rows()).toEqual([
      { path: 'a.jpg', crop_x: 'one-c.jpg'.charCodeAt(4), crop_source: 'detected', quality: null, changed: 1 },
      { path: 'b.jpg', crop_x: 'one-b.jpg'.charCodeAt(4), crop_source: 'detected', quality: null, changed: 0 },
      { path: 'c.jpg', crop_x: 'one-b.jpg'.charCodeAt(4), crop_source: 'detected', quality: null, changed: 1 },
    ]);
    // a.jpg's old embedding no longer counts; b.jpg keeps its own
    expect(embeddings()).toEqual([2]);

    // a face that went away is flagged, not kept with its old box
    put('b.jpg', 'none-a.jpg');
    const gone = await ingestWithFaces(store.db, opts(), { mode: 'auto', detector });
    expect(gone.faces.flagged.map((f) => [f.path, f.quality])).toEqual([['b.jpg', 'no-face']]);
    expect(rows()[1]).toEqual({ path: 'b.jpg', crop_x: null, crop_source: null, quality: 'no-face', changed: 1 });
    expect(embeddings()).toEqual([]);
  });

  it('the real detector finds the new face where it is now (real photos)', { timeout: 120_000 }, async () => {
    const detector = await createDetector({ backend: 'wasm' });
    await ingestWithFaces(store.db, opts(), { mode: 'auto', detector });
    const box = () => store.db.prepare(`SELECT crop_x AS x, crop_y AS y, crop_w AS w FROM images WHERE path = 'a.jpg'`).get();
    const before = box();
    expect(before).toEqual({ ...pick((await detector.detect(fixture('photos', 'one-a.jpg'))).faces[0]!.box) });
    put('a.jpg', 'one-c.jpg');
    const r = await ingestWithFaces(store.db, opts(), { mode: 'auto', detector });
    expect(r.ingest.newPixels).toBe(1);
    expect(box()).toEqual(pick((await detector.detect(fixture('photos', 'one-c.jpg'))).faces[0]!.box));
    expect(box()).not.toEqual(before);
  });

  it('CLI: ingest says how many changed, report how many of the run changed since it was trained', async () => {
    const fer = cliRunner({ cwd: () => t.dir, db: () => join(t.dir, 'c.db') });
    // face crops (48x48 FER faces) need no detector: --detect never keeps the test quick
    copyFileSync(fixture('csv', 'faces', 'fer0000301.png'), join(t.dir, 'a.png'));
    copyFileSync(fixture('csv', 'faces', 'fer0001039.png'), join(t.dir, 'b.png'));
    writeFileSync(join(t.dir, 'faces.csv'), 'path,label\na.png,happiness\nb.png,sadness\n');
    expect((await fer('ingest', join(t.dir, 'faces.csv'), '--name', 'faces', '--detect', 'never')).code).toBe(0);
    // a finished run on both images, trained before the change
    const started = '2000-01-01T00:00:00.000Z';
    store.db.prepare(
      `INSERT INTO runs (dataset_id, method, backbone, backend, seed, config, status, started_at, finished_at) VALUES (1, 'ce', 'faceexpr', 'cpu', 1, '{}', 'done', ?, ?)`,
    ).run(started, started);
    for (const [id, label] of [[1, 'happiness'], [2, 'sadness']] as const) {
      store.db.prepare(
        `INSERT INTO run_images (run_id, image_id, given_label, trained_label, probs, predicted_label) VALUES (1, ?, ?, ?, '[0.5,0.5]', ?)`,
      ).run(id, label, label, label);
    }
    const reportOf = async () => JSON.parse((await fer('report', '--json')).stdout) as { images_changed_since_run: number };
    expect((await reportOf()).images_changed_since_run).toBe(0);
    copyFileSync(fixture('csv', 'faces', 'fer0003252.png'), join(t.dir, 'b.png'));
    const again = await fer('ingest', join(t.dir, 'faces.csv'), '--name', 'faces', '--detect', 'never');
    expect(again.stdout).toMatch(/1 updated, 1 unchanged/);
    expect(again.stdout).toMatch(/1 of the updated images changed \(new pixels at the same path\): their face is detected again/);
    expect((await reportOf()).images_changed_since_run).toBe(1);
    expect((await fer('report')).stdout).toMatch(/1 image of this run changed since it was trained \(new pixels at the same path/);
  });
});

const pick = (b: { x: number; y: number; w: number }) => ({ x: b.x, y: b.y, w: b.w });
