/**
 * `npm run bench -- quality`: calibration of the near-duplicate thresholds (issue 19) and the whole-data check.
 *
 * 1. Calibration: 200 faces of the shared data (seeded, each byte-unique) are re-encoded, brightened, darkened and
 *    shifted by 1-2 px; each copy is embedded (onnxruntime) and compared with its original: embedding cosine and
 *    aligned pixel correlation (48 x 48, shifts up to 2 px), and the share a default `quality` would group.
 *    "Different people": each face's nearest other image by embedding, kept when its pixel correlation says it is a
 *    different photo (< 0.8), and 20,000 random pairs.
 * 2. Whole data: `checkQuality` on FER_QUALITY_DB (a COPY of an embedded database of the whole data; it is written).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { BACKBONES } from '../src/features/backbones.js';
import { buildOnnxModel } from '../src/features/onnx-graph.js';
import { OnnxEmbedder } from '../src/features/onnx-embedder.js';
import { loadEmbeddings } from '../src/features/store.js';
import { checkQuality, DEFAULT_QUALITY } from '../src/quality/index.js';
import { alignedCorrelation, greyFace } from '../src/quality/pixels.js';
import { unitRows } from '../src/quality/similarity.js';
import { openStore } from '../src/store/db.js';
import { DATA_DIR, machine, quantile } from './common.js';

const shift = (img: Sharp, dx: number, dy: number): Sharp =>
  img
    .extend({ top: Math.max(0, dy), bottom: Math.max(0, -dy), left: Math.max(0, dx), right: Math.max(0, -dx), extendWith: 'copy' })
    .extract({ left: Math.max(0, -dx), top: Math.max(0, -dy), width: 48, height: 48 });

const VARIANTS: Record<string, (f: string) => Sharp> = {
  'JPEG re-encode q75': (f) => sharp(f).jpeg({ quality: 75 }),
  'JPEG re-encode q40': (f) => sharp(f).jpeg({ quality: 40 }),
  'brightness x1.15': (f) => sharp(f).linear(1.15, 0),
  'brightness x0.85': (f) => sharp(f).linear(0.85, 0),
  'brightness +20 levels': (f) => sharp(f).linear(1, 20),
  'shift 1 px': (f) => shift(sharp(f), 1, 0),
  'shift 1 px diagonal': (f) => shift(sharp(f), 1, 1),
  'shift 2 px': (f) => shift(sharp(f), 2, 0),
  'shift 2 px diagonal': (f) => shift(sharp(f), 2, 2),
  'resized to 96 px': (f) => sharp(f).resize(96, 96),
  'mirrored (not a duplicate)': (f) => sharp(f).flop(),
};

const f3 = (x: number): string => x.toFixed(3);

export async function main(): Promise<void> {
  const source = process.env['FER_QUALITY_DB'];
  if (!source || !existsSync(source)) {
    console.error('bench quality: set FER_QUALITY_DB to a COPY of an embedded database of the whole data (it is written to)');
    process.exit(2);
  }
  console.log(`## quality (issue 19)\n\nmachine: ${machine()}; load average at start ${loadavg().map((l) => l.toFixed(1)).join(', ')}\n`);
  const db = openStore(source);
  const dataset = (db.prepare(`SELECT id FROM datasets ORDER BY id LIMIT 1`).get() as { id: number }).id;
  const unique = db
    .prepare(`SELECT id, path FROM images WHERE dataset_id = ? AND sha256 IN (SELECT sha256 FROM images GROUP BY sha256 HAVING count(*) = 1) ORDER BY id`)
    .all(dataset) as { id: number; path: string }[];
  let seed = 1;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const sample = Array.from({ length: 200 }, () => unique[Math.floor(rnd() * unique.length)]!);
  const info = BACKBONES['faceexpr']!;
  const embedder = await OnnxEmbedder.create(info, buildOnnxModel(info), 2);
  const embed = async (files: string[]): Promise<Float32Array> => unitRows(await embedder.run(await embedder.decode(files.map((file) => ({ file, box: null })))), info.dim);
  const dot = (a: Float32Array, i: number, b: Float32Array, j: number): number => {
    let s = 0;
    for (let k = 0; k < info.dim; k++) s += a[i * info.dim + k]! * b[j * info.dim + k]!;
    return s;
  };
  const files = sample.map((r) => join(DATA_DIR, r.path));
  const base = await embed(files);
  const baseGrey = await Promise.all(files.map((f) => greyFace(f, null)));
  const grouped = (cos: number, pixel: number): boolean =>
    cos >= DEFAULT_QUALITY.nearCosine || (cos >= DEFAULT_QUALITY.candidate && pixel >= DEFAULT_QUALITY.pixelMatch);
  const dir = mkdtempSync(join(tmpdir(), 'fer-quality-'));
  console.log(`Calibration: ${sample.length} byte-unique faces of ${DATA_DIR}, each copy against its original (embedding cosine, faceexpr; pixel = aligned correlation at 48x48, shifts up to 2 px). Defaults: candidate cosine ${DEFAULT_QUALITY.candidate}, pixel ${DEFAULT_QUALITY.pixelMatch}, or cosine ${DEFAULT_QUALITY.nearCosine} alone.\n`);
  console.log('| copy | cosine min | cosine p5 | cosine median | pixel min | pixel p5 | pixel median | grouped |');
  console.log('|---|---|---|---|---|---|---|---|');
  try {
    for (const [name, make] of Object.entries(VARIANTS)) {
      const out = await Promise.all(
        files.map(async (f, k) => {
          const file = join(dir, `${k}.${name.startsWith('JPEG') ? 'jpg' : 'png'}`);
          await make(f).toFile(file);
          return file;
        }),
      );
      const v = await embed(out);
      const cos = sample.map((_, k) => dot(base, k, v, k));
      const pixel = await Promise.all(out.map(async (f, k) => alignedCorrelation(baseGrey[k]!, await greyFace(f, null), 2)));
      const found = cos.filter((c, k) => grouped(c, pixel[k]!)).length;
      console.log(
        `| ${name} | ${f3(Math.min(...cos))} | ${f3(quantile(cos, 0.05))} | ${f3(quantile(cos, 0.5))} | ${f3(Math.min(...pixel))} | ${f3(quantile(pixel, 0.05))} | ${f3(quantile(pixel, 0.5))} | ${found} of ${sample.length} |`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // different people: nearest other image by embedding, when the pixels say it is another photo
  const all = loadEmbeddings(db, { datasetId: dataset, backbone: 'faceexpr' });
  const U = unitRows(all.data, all.dim);
  const rowOf = new Map(all.imageIds.map((id, i) => [id, i]));
  const pathOf = db.prepare(`SELECT path FROM images WHERE id = ?`);
  const nnCos: number[] = [];
  const nnPixel: number[] = [];
  for (const [k, r] of sample.entries()) {
    const i = rowOf.get(r.id)!;
    let best = -2;
    let bj = -1;
    for (let j = 0; j < all.imageIds.length; j++) {
      if (j === i) continue;
      const c = dot(U, i, U, j);
      if (c > best) [best, bj] = [c, j];
    }
    const other = (pathOf.get(all.imageIds[bj]!) as { path: string }).path;
    nnCos.push(best);
    nnPixel.push(alignedCorrelation(baseGrey[k]!, await greyFace(join(DATA_DIR, other), null), 2));
  }
  const diff = nnCos.map((c, k) => [c, nnPixel[k]!] as const).filter(([, p]) => p < 0.8);
  const random: number[] = [];
  for (let k = 0; k < 20_000; k++) {
    const i = Math.floor(rnd() * all.imageIds.length);
    const j = Math.floor(rnd() * all.imageIds.length);
    if (i !== j) random.push(dot(U, i, U, j));
  }
  console.log(
    `\nNearest other image of each of the ${sample.length} faces: cosine median ${f3(quantile(nnCos, 0.5))}, p95 ${f3(quantile(nnCos, 0.95))}; ` +
      `${sample.length - diff.length} of them correlate >= 0.8 pixel by pixel (another copy of the same photo: FER2013 holds many). ` +
      `The other ${diff.length} (different photos): cosine median ${f3(quantile(diff.map((d) => d[0]), 0.5))}, max ${f3(Math.max(...diff.map((d) => d[0])))}; ` +
      `pixel median ${f3(quantile(diff.map((d) => d[1]), 0.5))}, max ${f3(Math.max(...diff.map((d) => d[1])))}; grouped by the defaults: ${diff.filter(([c, p]) => grouped(c, p)).length}.`,
  );
  console.log(`Random pairs (${random.length}): cosine median ${f3(quantile(random, 0.5))}, p99.9 ${f3(quantile(random, 0.999))}, max ${f3(Math.max(...random))}.\n`);

  const started = performance.now();
  const s = await checkQuality(db, { datasetId: dataset });
  const wall = (performance.now() - started) / 1000;
  db.close();
  console.log(`Whole data (\`fer-clean quality\` on ${source}): ${s.images} images in ${wall.toFixed(1)} s (pixels ${s.seconds.pixels.toFixed(1)} s, pairs ${s.seconds.pairs.toFixed(1)} s); load average after ${loadavg().map((l) => l.toFixed(1)).join(', ')}\n`);
  console.log('| figure | value |\n|---|---|');
  for (const [k, v] of [
    ['duplicate groups (exact / near)', `${s.groups.exact} / ${s.groups.near}`],
    ['pairs in a group', s.pairs],
    ['images beyond the first of their group (export --dedupe drop leaves out)', s.redundant_images],
    ['pairs across splits (leakage) / groups', `${s.pairs_across_splits} / ${s.groups_across_splits}`],
    ['pairs with different labels / groups', `${s.pairs_conflicting} / ${s.groups_conflicting}`],
    ...Object.entries(s.flags).map(([f, n]) => [`flagged ${f}`, n]),
  ] as const) {
    console.log(`| ${k} | ${v} |`);
  }
}
