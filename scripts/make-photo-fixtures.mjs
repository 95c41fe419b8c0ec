// Builds fixtures/photos/ from the sample photos that ship in @vladmandic/face-api's demo/ folder (MIT): uncropped
// photos for face detection. Group photos shrunk to 640 px wide (several faces), regions around one person (one face)
// and regions with no face, each at most 400 px on its longer side. Run once: `node scripts/make-photo-fixtures.mjs`.
import sharp from 'sharp';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DEMO = 'node_modules/@vladmandic/face-api/demo';
const OUT = join('fixtures', 'photos');
// name, source sample, region in the source's pixels (left, top, width, height) or null for all of it, label
const PHOTOS = [
  ['group-a.jpg', 'sample1.jpg', null, 'happiness'],
  ['group-b.jpg', 'sample5.jpg', null, 'happiness'],
  ['one-a.jpg', 'sample1.jpg', [1300, 80, 600, 800], 'happiness'],
  ['one-b.jpg', 'sample3.jpg', [380, 200, 600, 800], 'neutral'],
  ['one-c.jpg', 'sample2.jpg', [1250, 0, 650, 800], 'neutral'],
  ['none-a.jpg', 'sample2.jpg', [0, 950, 900, 417], 'neutral'],
  ['none-b.jpg', 'sample3.jpg', [1250, 0, 670, 230], 'neutral'],
];
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const lines = ['path,label'];
for (const [name, source, region, label] of PHOTOS) {
  let img = sharp(join(DEMO, source));
  if (region) img = img.extract({ left: region[0], top: region[1], width: region[2], height: region[3] });
  const max = region ? 400 : 640;
  await img.resize(max, max, { fit: 'inside' }).jpeg({ quality: 85 }).toFile(join(OUT, name));
  lines.push(`${name},${label}`);
}
writeFileSync(join(OUT, 'labels.csv'), lines.join('\n') + '\n');
console.log(`${OUT}: ${PHOTOS.length} photos`);
