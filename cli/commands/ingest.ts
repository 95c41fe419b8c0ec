import { resolve, dirname, join } from 'node:path';
import { FORMATS, type IngestSummary } from '../../src/ingest/index.js';
import { ingestWithFaces } from '../../src/ingest/faces.js';
import { DETECT_MODES, TIGHT_CROP_MAX_ASPECT, TIGHT_CROP_MAX_SIDE } from '../../src/features/detect.js';
import type { LocateSummary } from '../../src/features/locate.js';
import { LABEL_ENCODINGS, parseClassList } from '../../src/taxonomy.js';
import { FerCleanError } from '../../src/errors.js';
import { err, out, type Io } from '../io.js';
import { ProgressBar } from '../progress.js';
import { UsageError, type Command } from '../command.js';
import { choiceFlag, openForWrite, parseIntFlag, pct } from './shared.js';

const USAGE = `usage: fer-clean ingest SOURCE [options]

Reads a facial-expression dataset into the database: every image is opened, decoded and hashed.

SOURCE is a CSV file, a RAF-DB folder (or its list_patition_label.txt), a class-folder tree, fer2013.csv, or
AffectNet's training.csv / validation.csv.
  --format F            csv | ferplus | imagefolder | rafdb | fer2013 | affectnet (detected when unambiguous)
  --images DIR          folder relative image paths resolve against (csv, ferplus, affectnet; default: the CSV's
                        folder, for affectnet Manually_Annotated_Images/ beside or above it); absolute paths are
                        taken as they are. For fer2013, where the PNGs are written (default: fer2013-images/
                        beside the database)
  --name NAME           dataset name (default: the source's folder name)
  --path-column C       CSV column with the image path (default: path, image, file, ...)
  --label-column C      CSV column with the label (default: label, emotion, expression, ...)
  --split-column C      CSV column with train/valid/test (default: split, usage, ...)
  --reference-column C  CSV column with an evaluation-only reference label
  --label-encoding E    names | fer2013 (0-6) | rafdb (1-7) | affectnet (0-7; 8 none, 9 uncertain, 10 no-face are
                        kept but not trained on): how numeric labels (CSV columns, class folder names) map to classes
  --classes A,B,...     the dataset's own classes, in order (2-9; review keys 1-9), for labels that are not FER
                        classes; default: the FER classes, contempt included when the data has it
  --contempt            keep contempt as an eighth class even when no image has it
  --detect MODE         auto (default) | always | never: find the face in each image with face-api's detector
                        and landmarks, and keep that crop; auto leaves images of at most ${TIGHT_CROP_MAX_SIDE} px that are
                        nearly square (sides within ${TIGHT_CROP_MAX_ASPECT}:1) alone, taking them for face crops already.
                        An image with no face or several faces is a problem (see --skip-bad)
  --skip-bad            ingest the good images and list the bad ones (default: any problem writes nothing);
                        images without exactly one face are kept with a flag, listed, and never embedded
  --concurrency N       images decoded at once (default 32)
  --db PATH             database (default ./fer-clean.db, or FER_CLEAN_DB)`;

export const ingestCommand: Command = {
  name: 'ingest',
  usage: USAGE,
  allowPositionals: true,
  options: {
    format: { type: 'string' },
    images: { type: 'string' },
    name: { type: 'string' },
    'path-column': { type: 'string' },
    'label-column': { type: 'string' },
    'split-column': { type: 'string' },
    'reference-column': { type: 'string' },
    'label-encoding': { type: 'string' },
    classes: { type: 'string' },
    contempt: { type: 'boolean' },
    'skip-bad': { type: 'boolean' },
    concurrency: { type: 'string' },
    detect: { type: 'string' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length !== 1) throw new UsageError(`expected one SOURCE, got ${positionals.length}`, USAGE);
    const source = resolve(io.cwd, positionals[0]!);
    const format = choiceFlag(values['format'], '--format', FORMATS);
    const labelEncoding = choiceFlag(values['label-encoding'], '--label-encoding', LABEL_ENCODINGS);
    const concurrency = parseIntFlag(values['concurrency'], '--concurrency');
    const classes = values['classes'] !== undefined ? parseClassList(values['classes'] as string) : undefined;
    const detect = choiceFlag(values['detect'], '--detect', DETECT_MODES) ?? 'auto';
    const store = openForWrite(values, io);
    let bar: ProgressBar | undefined;
    let faceBar: ProgressBar | undefined;
    try {
      const result = await ingestWithFaces(
        store.db,
        {
          source,
          format,
          images: values['images'] ? resolve(io.cwd, values['images'] as string) : undefined,
          name: values['name'] as string | undefined,
          pathColumn: values['path-column'] as string | undefined,
          labelColumn: values['label-column'] as string | undefined,
          splitColumn: values['split-column'] as string | undefined,
          referenceColumn: values['reference-column'] as string | undefined,
          labelEncoding,
          classes,
          contempt: Boolean(values['contempt']),
          skipBad: Boolean(values['skip-bad']),
          concurrency,
          defaultImagesDir: join(dirname(resolve(io.cwd, store.path)), 'fer2013-images'),
        },
        { mode: detect },
        {
          ingest: (done, total) => {
            if (total < 300) return;
            bar ??= new ProgressBar(io, 'ingest', total);
            bar.update(done);
          },
          detect: (done, total) => {
            bar?.finish();
            bar = undefined;
            faceBar ??= new ProgressBar(io, 'detect faces', total);
            faceBar.update(done);
          },
        },
      );
      bar?.finish();
      faceBar?.finish();
      printIngestSummary(io, result.ingest, store.path);
      printFaces(io, result.faces);
      store.db.close();
      return 0;
    } catch (e) {
      bar?.finish();
      faceBar?.finish();
      store.discard();
      throw e;
    }
  },
};

/** What an ingest did, for people (also the demo's). */
export function printIngestSummary(io: Io, s: IngestSummary, dbPath: string): void {
  out(io, `dataset '${s.dataset.name}' (${s.dataset.format}) in ${dbPath}: ${s.images} images — ${s.added} added, ${s.updated} updated, ${s.unchanged} unchanged`);
  if (s.newPixels) {
    out(io, `  ${s.newPixels} of the updated images changed (new pixels at the same path): their face is detected again and their old embeddings were dropped (\`fer-clean embed\` computes new ones)`);
  }
  if (s.missingFromSource) out(io, `  ${s.missingFromSource} images in the database are no longer in the source (kept)`);
  out(io, `  splits:  ${Object.entries(s.splits).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out(io, `  classes: ${Object.entries(s.classes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  const nonExpression = Object.entries(s.nonExpression);
  if (nonExpression.length) {
    const n = nonExpression.reduce((a, [, v]) => a + v, 0);
    out(io, `  not an expression (kept, not trained on): ${n} — ${nonExpression.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  if (s.faceBoxes) out(io, `  face boxes from the source: ${s.faceBoxes} (embedding and review use the box)`);
  if (s.agreement) {
    const { compared, agree } = s.agreement;
    out(io, `  given label agrees with the reference on ${agree} of ${compared} images with one (${pct(agree, compared)}); ${compared - agree} disagree`);
  }
  const conflicting = s.duplicates.filter((d) => d.conflicting);
  if (s.duplicates.length) {
    out(io, `  exact-duplicate images: ${s.duplicates.length} groups, ${conflicting.length} with disagreeing labels`);
    for (const d of conflicting.slice(0, 10)) out(io, `    ${d.paths.map((p, i) => `${p} (${d.labels[i]})`).join(' = ')}`);
    if (conflicting.length > 10) out(io, `    ... and ${conflicting.length - 10} more`);
  }
  if (s.repeatedLines) out(io, `  ${s.repeatedLines} repeated line(s) (same image, same label and fields) kept with the first line naming it`);
  if (s.skipped.length) {
    err(io, `skipped ${s.skipped.length} bad item${s.skipped.length > 1 ? 's' : ''} (--skip-bad):`);
    for (const p of s.skipped) err(io, `  ${p.where}: ${p.message}`);
  }
}

function printFaces(io: Io, f: LocateSummary): void {
  if (f.mode === 'never') return;
  const parts: string[] = [];
  if (f.examined) parts.push(`${f.examined} examined by the detector, ${f.cropped} cropped to their one face`);
  if (f.tight) parts.push(`${f.tight} taken for face crops already (at most ${TIGHT_CROP_MAX_SIDE} px, nearly square)`);
  if (f.kept) parts.push(`${f.kept} kept their box or flag from before`);
  out(io, `  faces (--detect ${f.mode}): ${parts.join('; ') || 'no images to look at'}${f.examined ? ` in ${f.seconds.toFixed(1)}s` : ''}`);
  if (f.flagged.length) {
    err(io, `flagged ${f.flagged.length} image${f.flagged.length > 1 ? 's' : ''} without exactly one face (kept, never embedded; --skip-bad):`);
    for (const x of f.flagged) err(io, `  ${x.path}: ${x.quality} (${x.detail})`);
  }
}
