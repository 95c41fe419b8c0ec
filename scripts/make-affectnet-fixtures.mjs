// Builds fixtures/affectnet/ and fixtures/affectnet-folders/: small AffectNet-shaped samples made from the FER2013
// faces already in fixtures/ferplus/ (AffectNet itself is not redistributable). Seeded; run once on purpose:
// `node scripts/make-affectnet-fixtures.mjs` (tests depend on these exact files).
//
// affectnet/          the official layout: Manually_Annotated_file_lists/{training,validation}.csv with AffectNet's
//                     columns, and Manually_Annotated_Images/<n>/<hex>.jpg: each face pasted into a larger noisy
//                     canvas at a known place and scale, face_x..face_height giving that box. Codes 8 (none) and
//                     9 (uncertain) rows hold a face; code 10 (no-face) rows a canvas without one.
// affectnet-folders/  the class-folder layout: {train,val}/<code 0-7>/*.jpg, faces already cropped.
import { parse } from 'csv-parse/sync';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const FIX = 'fixtures';
const rows = parse(readFileSync(join(FIX, 'ferplus', 'labels.csv')), { columns: true });

let s = 9001; // mulberry32
const rand = () => { s |= 0; s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

// AffectNet expression codes 0-7 and the FER2013 label each is drawn from (contempt: the faces with most contempt votes)
const CODES = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];
const pool = (cls, split) => {
  const inSplit = rows.filter((r) => r.split === split);
  if (cls !== 'contempt') return inSplit.filter((r) => r.fer2013_label === cls);
  return [...inSplit].sort((a, b) => Number(b.votes_contempt) - Number(a.votes_contempt));
};
const used = new Set();
const take = (cls, split, n) => {
  const out = pool(cls, split).filter((r) => !used.has(r.image)).slice(0, n);
  out.forEach((r) => used.add(r.image));
  return out;
};

/** A grey canvas of noise (deterministic), as raw 1-channel pixels. */
const canvas = (w, h) => {
  const px = Buffer.alloc(w * h);
  for (let i = 0; i < px.length; i++) px[i] = 90 + int(0, 80);
  return sharp(px, { raw: { width: w, height: h, channels: 1 } });
};

/** 68 landmark points inside the box, written as AffectNet does: x;y;x;y;... with two decimals. */
const landmarks = (b) => Array.from({ length: 68 }, () => [(b.x + rand() * b.w).toFixed(2), (b.y + rand() * b.h).toFixed(2)].join(';')).join(';');
const affect = () => (rand() * 2 - 1).toFixed(6);

rmSync(join(FIX, 'affectnet'), { recursive: true, force: true });
rmSync(join(FIX, 'affectnet-folders'), { recursive: true, force: true });
mkdirSync(join(FIX, 'affectnet', 'Manually_Annotated_file_lists'), { recursive: true });

const HEADER = 'subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal';
async function annotationFile(name, split, perCode) {
  const plan = [];
  CODES.forEach((cls, code) => take(cls, split, perCode).forEach((r) => plan.push({ code, face: r.image })));
  // 8 none, 9 uncertain: a face whose expression the annotators did not name; 10 no-face: no face at all
  for (const code of [8, 9]) take('neutral', split, 1).forEach((r) => plan.push({ code, face: r.image }));
  plan.push({ code: 10, face: null });
  plan.sort(() => rand() - 0.5);
  const lines = [HEADER];
  for (const { code, face } of plan) {
    const scale = [1, 1.5, 2][int(0, 2)];
    const side = Math.round(48 * scale);
    const W = side + int(16, 40);
    const H = side + int(12, 32);
    const box = { x: int(0, W - side), y: int(0, H - side), w: side, h: side };
    const layers = face
      ? [{ input: await sharp(join(FIX, 'ferplus', face)).resize(side, side).toBuffer(), left: box.x, top: box.y }]
      : [];
    const dir = String(int(100, 999));
    const file = createHash('sha1').update(`${name}:${face ?? lines.length}`).digest('hex').slice(0, 16) + '.jpg';
    mkdirSync(join(FIX, 'affectnet', 'Manually_Annotated_Images', dir), { recursive: true });
    await canvas(W, H).composite(layers).jpeg({ quality: 75 }).toFile(join(FIX, 'affectnet', 'Manually_Annotated_Images', dir, file));
    lines.push([`${dir}/${file}`, box.x, box.y, box.w, box.h, landmarks(box), code, affect(), affect()].join(','));
  }
  writeFileSync(join(FIX, 'affectnet', 'Manually_Annotated_file_lists', name), lines.join('\n') + '\n');
  return plan.length;
}
const nTrain = await annotationFile('training.csv', 'train', 3);
const nValid = await annotationFile('validation.csv', 'valid', 1);

let nFolders = 0;
for (const [dir, split, n] of [['train', 'train', 2], ['val', 'test', 1]]) {
  for (const [code, cls] of CODES.entries()) {
    for (const r of take(cls, split, n)) {
      mkdirSync(join(FIX, 'affectnet-folders', dir, String(code)), { recursive: true });
      const name = r.image.split('/').pop().replace('.png', '.jpg');
      await sharp(join(FIX, 'ferplus', r.image)).resize(64, 64).jpeg({ quality: 75 }).toFile(join(FIX, 'affectnet-folders', dir, String(code), name));
      nFolders++;
    }
  }
}
console.log(`affectnet fixtures: training.csv ${nTrain} rows, validation.csv ${nValid} rows, class folders ${nFolders} images`);
