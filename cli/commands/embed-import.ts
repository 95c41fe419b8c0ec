import { FerCleanError } from '../../src/errors.js';
import { importEmbeddings } from '../../src/features/import.js';
import { resolveDataset } from '../../src/store/datasets.js';
import { err, out } from '../io.js';
import type { Io } from '../io.js';
import { openExisting } from './shared.js';

/** The part of `embed`'s usage about importing (embed --from). */
export const IMPORT_USAGE = `
 Import embeddings from your own model instead (one transaction: any bad row writes nothing):
  --from FILE        FILE.csv: a 'path' column (each image's path as the dataset's source wrote it, e.g.
                     images/train/fer0000000.png, or absolute) then one numeric column per dimension; or
                     FILE.npy: a rows x dims float16/float32/float64 C-order array (np.save), with --paths
  --paths PATHS.txt  for a .npy file: one image path per line, line k naming row k
  --name NAME        backbone name to store them under (default: FILE's stem); train with --backbone NAME
                     (alone, or concatenated: NAME+faceexpr). Importing again under NAME replaces the rows.
  --skip-bad         skip rows whose path names no image, and import even if some images have no row (they are
                     left out of training on NAME); without it either is an error`;

/** `embed --from FILE`: imports a CSV or .npy of embeddings as a backbone of its own. */
export async function runEmbedImport(values: Record<string, unknown>, io: Io): Promise<number> {
  const clash = ['backbone', 'backend', 'batch', 'workers', 'split'].filter((k) => values[k] !== undefined);
  if (clash.length) throw new FerCleanError(`--from imports embeddings: it takes no ${clash.map((k) => `--${k}`).join(', ')}`);
  const db = openExisting(values, io);
  try {
    const dataset = resolveDataset(db, values['dataset'] as string | undefined);
    const r = await importEmbeddings(db, {
      datasetId: dataset.id,
      file: values['from'] as string,
      paths: values['paths'] as string | undefined,
      name: values['name'] as string | undefined,
      skipBad: Boolean(values['skip-bad']),
    });
    out(
      io,
      `imported ${r.rows} embeddings (${r.dim}-d) as backbone '${r.name}' (version ${r.version}) into dataset '${dataset.name}' in ${r.seconds.toFixed(1)}s: ` +
        `train on them with \`fer-clean train --backbone ${r.name}\``,
    );
    if (r.flagged) err(io, `  ${r.flagged} of them are for images flagged at ingest (no face, several faces): stored, never trained on`);
    if (r.missing) err(io, `  ${r.missing} image${r.missing > 1 ? 's have' : ' has'} no row (--skip-bad): left out of training on '${r.name}'`);
    if (r.unmatched.count) {
      err(io, `  skipped ${r.unmatched.count} row${r.unmatched.count > 1 ? 's' : ''} naming no image of the dataset (--skip-bad):`);
      for (const line of r.unmatched.first) err(io, `    ${line}`);
      if (r.unmatched.count > r.unmatched.first.length) err(io, `    ...`);
    }
    return 0;
  } finally {
    db.close();
  }
}
