// Builds fixtures/ from ../shared/data/fer2013plus (FER2013 images, FER+ votes): a stratified, seeded sample in
// several ingest formats, plus deliberately broken inputs. Run once: `node scripts/make-fixtures.mjs`.
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import sharp from 'sharp';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const SRC = process.argv[2] ?? '../shared/data/fer2013plus';
const OUT = 'fixtures';
const rows = parse(readFileSync(join(SRC, 'labels.csv')), { columns: true });

let s = 12345; // mulberry32
const rand = () => { s |= 0; s = (s + 0x6d2b79f5) | 0; let t = Math.imul(s ^ (s >>> 15), 1 | s); t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const shuffle = (a) => { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; } return a; };

const CLASSES = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'];
// per split, images per original class: train 30 (disgust is rare: 12), valid/test 8 (disgust 4)
const want = { train: 30, valid: 8, test: 8 };
const picked = [];
for (const split of ['train', 'valid', 'test']) {
  for (const c of CLASSES) {
    const pool = shuffle(rows.filter((r) => r.split === split && r.fer2013_label === c && r.fer2013_label_ambiguous === '0'));
    const n = c === 'disgust' ? Math.ceil(want[split] / 2.5) : want[split];
    picked.push(...pool.slice(0, n));
  }
}
rmSync(join(OUT, 'ferplus'), { recursive: true, force: true });
for (const r of picked) {
  const dst = join(OUT, 'ferplus', r.image);
  mkdirSync(dirname(dst), { recursive: true });
  copyFileSync(join(SRC, r.image), dst);
}
writeFileSync(join(OUT, 'ferplus', 'labels.csv'), stringify(picked, { header: true, columns: Object.keys(rows[0]) }));

// imagefolder: ROOT/<split>/<class>/*.png, 4 per class from train, 2 per class from test
rmSync(join(OUT, 'imagefolder'), { recursive: true, force: true });
for (const [split, n] of [['train', 4], ['test', 2]]) {
  for (const c of CLASSES) {
    for (const r of picked.filter((p) => p.split === split && p.fer2013_label === c).slice(0, n)) {
      const dst = join(OUT, 'imagefolder', split, c, r.image.split('/').pop());
      mkdirSync(dirname(dst), { recursive: true });
      copyFileSync(join(SRC, r.image), dst);
    }
  }
}

// csv: generic CSV with FER2013 numeric labels and a split column, images in faces/
rmSync(join(OUT, 'csv'), { recursive: true, force: true });
mkdirSync(join(OUT, 'csv', 'faces'), { recursive: true });
const csvRows = picked.filter((_, i) => i % 8 === 0).map((r) => {
  const name = r.image.split('/').pop();
  copyFileSync(join(SRC, r.image), join(OUT, 'csv', 'faces', name));
  return { file: `faces/${name}`, emotion: CLASSES.indexOf(r.fer2013_label), usage: r.split };
});
writeFileSync(join(OUT, 'csv', 'labels.csv'), stringify(csvRows, { header: true }));

// rafdb: EmoLabel/list_patition_label.txt and Image/aligned/<stem>_aligned.jpg (100x100 RGB JPEG like RAF-DB)
rmSync(join(OUT, 'rafdb'), { recursive: true, force: true });
mkdirSync(join(OUT, 'rafdb', 'EmoLabel'), { recursive: true });
mkdirSync(join(OUT, 'rafdb', 'Image', 'aligned'), { recursive: true });
const RAF = ['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral'];
const rafLines = [];
let ti = 0, si = 0;
for (const r of picked.filter((_, i) => i % 12 === 5)) {
  const stem = r.split === 'train' ? `train_${String(++ti).padStart(5, '0')}` : `test_${String(++si).padStart(4, '0')}`;
  await sharp(join(SRC, r.image)).resize(100, 100).toColourspace('srgb').jpeg({ quality: 90 }).toFile(join(OUT, 'rafdb', 'Image', 'aligned', `${stem}_aligned.jpg`));
  rafLines.push(`${stem}.jpg ${RAF.indexOf(r.fer2013_label) + 1}`);
}
writeFileSync(join(OUT, 'rafdb', 'EmoLabel', 'list_patition_label.txt'), rafLines.join('\n') + '\n');

// fer2013: the original CSV layout (emotion, pixels, Usage) for 21 images
rmSync(join(OUT, 'fer2013'), { recursive: true, force: true });
mkdirSync(join(OUT, 'fer2013'), { recursive: true });
const usage = { train: 'Training', valid: 'PublicTest', test: 'PrivateTest' };
const ferRows = [];
for (const r of picked.filter((_, i) => i % 11 === 3)) {
  const { data } = await sharp(join(SRC, r.image)).greyscale().raw().toBuffer({ resolveWithObject: true });
  ferRows.push({ emotion: CLASSES.indexOf(r.fer2013_label), pixels: Array.from(data).join(' '), Usage: usage[r.split] });
}
writeFileSync(join(OUT, 'fer2013', 'fer2013.csv'), stringify(ferRows, { header: true }));

// bad inputs
rmSync(join(OUT, 'bad'), { recursive: true, force: true });
mkdirSync(join(OUT, 'bad', 'images'), { recursive: true });
const goodA = picked[0].image.split('/').pop(), goodB = picked[1].image.split('/').pop();
copyFileSync(join(SRC, picked[0].image), join(OUT, 'bad', 'images', goodA));
copyFileSync(join(SRC, picked[1].image), join(OUT, 'bad', 'images', goodB));
const full = readFileSync(join(SRC, picked[2].image));
writeFileSync(join(OUT, 'bad', 'images', 'truncated.png'), full.subarray(0, Math.floor(full.length / 2)));
writeFileSync(join(OUT, 'bad', 'images', 'not-an-image.png'), 'this is text, not a PNG\n');
const w = (name, text) => writeFileSync(join(OUT, 'bad', name), text);
w('empty.csv', '');
w('header-only.csv', 'path,label\n');
w('missing-column.csv', `path,mood\nimages/${goodA},happy\n`);
w('unknown-label.csv', `path,label\nimages/${goodA},happy\nimages/${goodB},bored\n`);
w('numeric-label.csv', `path,label\nimages/${goodA},3\n`);
w('missing-file.csv', `path,label\nimages/${goodA},happy\nimages/nope.png,sad\n`);
w('truncated-image.csv', `path,label\nimages/${goodA},happy\nimages/truncated.png,sad\n`);
w('not-an-image.csv', `path,label\nimages/not-an-image.png,sad\n`);
w('duplicate-path.csv', `path,label\nimages/${goodA},happy\nimages/${goodB},sad\nimages/${goodA},anger\n`);
w('escaping-path.csv', `path,label\nimages/${goodA},happy\n../../package.json,sad\n`);
w('ragged.csv', `path,label\nimages/${goodA},happy,extra\n`);
w('good.csv', `path,label\nimages/${goodA},happy\nimages/${goodB},sad\n`);
console.log(`fixtures: ${picked.length} ferplus images, ${csvRows.length} csv, ${rafLines.length} rafdb, ${ferRows.length} fer2013`);
