import type { FaceBox } from '../features/facebox.js';
import type { LabelEncoding } from '../taxonomy.js';

export const FORMATS = ['csv', 'ferplus', 'imagefolder', 'rafdb', 'fer2013', 'affectnet'] as const;
export type Format = (typeof FORMATS)[number];

/** Where a stored source record (images.source_row) keeps the later lines that repeat it: a key no CSV header holds. */
export const REPEATS_KEY = '\u0000repeats';

export interface IngestOptions {
  /** A CSV file, a list file or a folder, depending on the format. */
  source: string;
  format?: Format;
  /**
   * Folder relative image paths resolve against (csv, ferplus, affectnet; absolute paths are taken as they are), or
   * where fer2013 pixels are written as PNGs.
   */
  images?: string;
  /** Dataset name; default: derived from the source's folder name. */
  name?: string;
  pathColumn?: string;
  labelColumn?: string;
  splitColumn?: string;
  referenceColumn?: string;
  /** How numeric labels map to classes (csv, imagefolder); fer2013 and rafdb imply their own. */
  labelEncoding?: LabelEncoding;
  /** Add contempt as an eighth class even when no label is contempt (it is added anyway when one is). */
  contempt?: boolean;
  /** The dataset's own class list (2-9 names, in order; see parseClassList) instead of the FER classes. */
  classes?: string[];
  /** Ingest the good rows and report the bad ones instead of failing the whole ingest. */
  skipBad?: boolean;
  /** Images decoded at once per thread (default 16). */
  concurrency?: number;
  /** Worker threads decoding images (default: one per core, at most 4; 0 = none). */
  workers?: number;
  /** Where fer2013 PNGs go when `images` is not given (default: beside the database). */
  defaultImagesDir?: string;
}

/** One image as a source describes it, before it is opened. */
export interface SourceItem {
  /** Path relative to the dataset root, '/' separated, or absolute when the source wrote it so. */
  path: string;
  /** Label as written in the source. */
  labelRaw: string;
  split: string;
  /** Where it came from, for error messages: e.g. `labels.csv:12` or `train/happy/x.png`. */
  where: string;
  line?: number;
  /** Reference label (canonical) when the source gives one; null when it gives none for this image. */
  reference?: string | null;
  referenceVotes?: Record<string, number>;
  /** Raw CSV record, for `export --format same`. */
  record?: Record<string, string>;
  /** The source's bytes for this item, line ending included, when export writes them back verbatim (affectnet). */
  text?: Buffer;
  /** The face box the source gives (checked against the image once it is opened); undefined = the source has none. */
  box?: FaceBox;
  /** A data-quality flag the source implies (images.quality), or null for none; undefined = the source says nothing. */
  quality?: string | null;
}

/** What a format reader produces: the items and everything needed to resolve them. */
export interface SourceListing {
  format: Format;
  /** Absolute folder the item paths are relative to. */
  root: string;
  items: SourceItem[];
  labelEncoding: LabelEncoding;
  /** Problems found while reading the source itself (bad lines), each naming file and line. */
  problems: Problem[];
  /** Settings to remember with the dataset (columns, encoding), for writing the format back. */
  options: Record<string, unknown>;
  /** Default dataset name. */
  name: string;
}

export interface Problem {
  where: string;
  message: string;
  /** The item's path, when the problem is about one image (so --skip-bad can drop it). */
  path?: string;
}

export const problemText = (p: Problem): string => `${p.where}: ${p.message}`;

export interface IngestSummary {
  dataset: { id: number; name: string; format: Format; root: string };
  images: number;
  added: number;
  updated: number;
  /**
   * Of the updated images, those with new bytes at the same path: a face box found by detection and a detection flag
   * (no-face, several-faces) are dropped so the face is detected again, and their embeddings are dropped (embed
   * computes them again; runs trained before no longer count them as current).
   */
  newPixels: number;
  unchanged: number;
  /** Images in the database that the source no longer lists (left in place). */
  missingFromSource: number;
  classes: Record<string, number>;
  /** Images whose label is not an expression class (AffectNet none, uncertain, no-face): kept, not trained on. */
  nonExpression: Record<string, number>;
  /** Images with a face box from the source (cropped for embedding and review). */
  faceBoxes: number;
  splits: Record<string, number>;
  duplicates: DuplicateGroup[];
  /** Given label vs reference label, over images that have a reference. */
  agreement: { compared: number; agree: number } | null;
  skipped: Problem[];
  /** Lines that named a path already listed, identically (same label, same fields): kept with the first, written back by `export --format same`. */
  repeatedLines: number;
}

export interface DuplicateGroup {
  sha256: string;
  paths: string[];
  labels: string[];
  /** True when the copies carry different given labels. */
  conflicting: boolean;
}

export type ProgressFn = (done: number, total: number) => void;
