import { FerCleanError } from '../errors.js';
import { nowIso, type DB } from '../store/db.js';
import { getDatasetById } from '../store/datasets.js';
import { backboneVersion, resolveBackbone, type BackboneInfo } from './backbones.js';
import { boxOfRow, usableSql, type FaceBox } from './facebox.js';
import { resolveStoredBackbone } from './import.js';
import { DEFAULT_TTA, ttaVersion, type Tta } from './tta.js';

export { BACKBONES, DEFAULT_BACKBONE, resolveBackbone, type BackboneInfo, type ResolvedBackbone } from './backbones.js';

/** Embeddings rows: float32 little-endian BLOBs keyed by (image, backbone id, backbone version). */

export interface PendingImage {
  id: number;
  /** Relative to the dataset root, '/' separated. */
  path: string;
  /** The face box to embed, or null for the whole image. */
  box: FaceBox | null;
}

/**
 * Images of a dataset (optionally of one split, at most `limit`) with no embedding yet for this backbone version, in
 * id order. Images whose quality flag makes them unusable (no face, several faces) are never listed.
 */
export function missingImages(
  db: DB,
  datasetId: number,
  backbone: string,
  version: string,
  filter: { split?: string; limit?: number } = {},
): PendingImage[] {
  const rows = db
    .prepare(
      `SELECT i.id, i.path, i.crop_x, i.crop_y, i.crop_w, i.crop_h FROM images i
       WHERE i.dataset_id = ? AND (? IS NULL OR i.split = ?) AND ${usableSql('i')}
         AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.image_id = i.id AND e.backbone = ? AND e.backbone_version = ?)
       ORDER BY i.id LIMIT ?`,
    )
    .all(datasetId, filter.split ?? null, filter.split ?? null, backbone, version, filter.limit ?? -1) as (Omit<PendingImage, 'box'> &
    Parameters<typeof boxOfRow>[0])[];
  return rows.map((r) => ({ id: r.id, path: r.path, box: boxOfRow(r) }));
}

/** Images of a dataset (optionally of one split) that can be embedded: flagged ones (see usableSql) are not counted. */
export function countImages(db: DB, datasetId: number, split?: string): number {
  return (
    db
      .prepare(`SELECT count(*) AS n FROM images i WHERE i.dataset_id = ? AND (? IS NULL OR i.split = ?) AND ${usableSql('i')}`)
      .get(datasetId, split ?? null, split ?? null) as { n: number }
  ).n;
}

/** Images of a dataset (optionally of one split) left out of embedding by their quality flag. */
export function countUnusable(db: DB, datasetId: number, split?: string): number {
  return (
    db
      .prepare(`SELECT count(*) AS n FROM images i WHERE i.dataset_id = ? AND (? IS NULL OR i.split = ?) AND NOT ${usableSql('i')}`)
      .get(datasetId, split ?? null, split ?? null) as { n: number }
  ).n;
}

/** Embeddings already stored for this backbone version among a dataset's images (optionally of one split). */
export function countStored(db: DB, datasetId: number, backbone: string, version: string, split?: string): number {
  return (
    db
      .prepare(
        `SELECT count(*) AS n FROM embeddings e JOIN images i ON i.id = e.image_id
         WHERE i.dataset_id = ? AND (? IS NULL OR i.split = ?) AND e.backbone = ? AND e.backbone_version = ?`,
      )
      .get(datasetId, split ?? null, split ?? null, backbone, version) as { n: number }
  ).n;
}

/** Writes one batch of vectors (row-major, ids.length x dim) in one transaction. */
export function saveEmbeddings(
  db: DB,
  rows: { ids: readonly number[]; vectors: Float32Array },
  backbone: BackboneInfo,
  version: string,
  backend: string,
): void {
  const { ids, vectors } = rows;
  const dim = backbone.dim;
  if (vectors.length !== ids.length * dim) {
    throw new Error(`saveEmbeddings: ${vectors.length} values for ${ids.length} images of dim ${dim}`);
  }
  const insert = db.prepare(
    `INSERT OR REPLACE INTO embeddings (image_id, backbone, backbone_version, dim, vector, backend, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const now = nowIso();
  db.transaction(() => {
    ids.forEach((id, i) => {
      const v = vectors.subarray(i * dim, (i + 1) * dim);
      insert.run(id, backbone.id, version, dim, Buffer.from(v.buffer, v.byteOffset, v.byteLength), backend, now);
    });
  })();
}

export interface LoadedEmbeddings {
  /** Image ids in ascending order. */
  imageIds: number[];
  dim: number;
  /** Row-major imageIds.length x dim. */
  data: Float32Array;
  /** The version of each part, joined with '+' for a concatenation. */
  backboneVersion: string;
}

/**
 * Every image's embedding for a backbone (`a` or `a+b`, concatenated per image in that order; each part built in or
 * imported with `embed --from`), at the version the installed package and preprocessing give, made with test-time
 * augmentation `tta` (default DEFAULT_TTA; see tta.ts; built-in parts only), or for an imported part the version of
 * its latest import. Missing embeddings for any image of the dataset are an error that says how many are missing and
 * which command computes them; only a single imported backbone that was imported with --skip-bad may cover fewer
 * images, and then `imageIds` lists the ones it covers.
 */
export function loadEmbeddings(db: DB, opts: { datasetId: number; backbone: string; tta?: Tta }): LoadedEmbeddings {
  const resolved = resolveStoredBackbone(db, opts.datasetId, opts.backbone);
  const dataset = getDatasetById(db, opts.datasetId);
  const total = countImages(db, opts.datasetId);
  const tta = opts.tta ?? DEFAULT_TTA;
  const versions = resolved.parts.map((p) => (p.imported ? p.version : ttaVersion(p.version, tta)));
  const hintOf = (b: { id: string; imported?: unknown }): string =>
    b.imported
      ? `import it again: \`fer-clean embed --from FILE --name ${b.id} --dataset ${dataset.name}\``
      : `run \`fer-clean embed --backbone ${resolved.name}${tta === DEFAULT_TTA ? '' : ` --tta ${tta}`} --dataset ${dataset.name}\``;
  if (total === 0) throw new FerCleanError(`dataset '${dataset.name}' has no images`);
  // A lone imported backbone may cover only some images (--skip-bad); the others are then left out.
  const mayBePartial = resolved.parts.length === 1 && resolved.parts[0]!.imported !== undefined;

  const select = db.prepare(
    `SELECT e.image_id AS id, e.dim, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id
     WHERE i.dataset_id = ? AND e.backbone = ? AND e.backbone_version = ? AND ${usableSql('i')} ORDER BY e.image_id`,
  );
  // Rows are streamed straight into one Float32Array: a million 1 KB BLOBs held as Buffers first would double
  // the memory of the load.
  const dim = resolved.dim;
  const imageIds: number[] = [];
  const data = new Float32Array(total * dim);
  const bytes = new Uint8Array(data.buffer);
  let offset = 0;
  let covered = total;
  resolved.parts.forEach((b, k) => {
    let i = 0;
    for (const r of select.iterate(opts.datasetId, b.id, versions[k]) as IterableIterator<{ id: number; dim: number; vector: Buffer }>) {
      if (k === 0) imageIds.push(r.id);
      else if (r.id !== imageIds[i]) throw new Error(`loadEmbeddings: image ids of ${b.id} do not line up`);
      if (r.dim !== b.dim || r.vector.byteLength !== b.dim * 4) {
        throw new FerCleanError(
          `embedding of image ${r.id} for ${b.id} has ${r.vector.byteLength / 4} values, expected ${b.dim}: delete it and ${hintOf(b)}`,
        );
      }
      bytes.set(r.vector, (i * dim + offset) * 4);
      i++;
    }
    if (i < total && !(mayBePartial && i > 0)) {
      throw new FerCleanError(
        `backbone ${b.id} (${versions[k]}): embeddings missing for ${total - i} of ${total} images of dataset '${dataset.name}': ${hintOf(b)}` +
          (b.imported && resolved.parts.length > 1 ? ` (an import made with --skip-bad can only be trained on alone)` : ''),
      );
    }
    covered = i;
    offset += b.dim;
  });
  return { imageIds, dim, data: covered < total ? data.slice(0, covered * dim) : data, backboneVersion: versions.join('+') };
}
