import { FerCleanError } from './errors.js';
import { hasControl, printable } from './printable.js';

/** The seven basic expressions in FER2013's order (0-6); contempt (FER+, AffectNet) is optional and comes last. */
export const BASIC_CLASSES = ['anger', 'disgust', 'fear', 'happiness', 'sadness', 'surprise', 'neutral'] as const;
export const CONTEMPT = 'contempt';
export type ClassName = (typeof BASIC_CLASSES)[number] | typeof CONTEMPT;

export function defaultTaxonomy(withContempt = false): string[] {
  return withContempt ? [...BASIC_CLASSES, CONTEMPT] : [...BASIC_CLASSES];
}

/** Word forms accepted for each class (case-insensitive). Anything else is an error, never a guess. */
const NAME_ALIASES: Record<ClassName, readonly string[]> = {
  anger: ['anger', 'angry'],
  disgust: ['disgust', 'disgusted'],
  fear: ['fear', 'fearful', 'afraid', 'scared'],
  happiness: ['happiness', 'happy'],
  sadness: ['sadness', 'sad'],
  surprise: ['surprise', 'surprised'],
  neutral: ['neutral'],
  contempt: ['contempt', 'contemptuous'],
};

/** How numbers in a label column are read. */
export type LabelEncoding = 'names' | 'fer2013' | 'rafdb' | 'affectnet';
export const LABEL_ENCODINGS: readonly LabelEncoding[] = ['names', 'fer2013', 'rafdb', 'affectnet'];

/** FER2013 `emotion` column: 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral. */
const FER2013_CODES: readonly ClassName[] = BASIC_CLASSES;
/** RAF-DB basic emotion list: 1=Surprise 2=Fear 3=Disgust 4=Happiness 5=Sadness 6=Anger 7=Neutral. */
const RAFDB_CODES: readonly ClassName[] = ['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral'];
/** AffectNet `expression`: 0=Neutral 1=Happiness 2=Sadness 3=Surprise 4=Fear 5=Disgust 6=Anger 7=Contempt. */
const AFFECTNET_CODES: readonly ClassName[] = ['neutral', 'happiness', 'sadness', 'surprise', 'fear', 'disgust', 'anger', 'contempt'];
/**
 * AffectNet codes that are not expression classes: 8=None, 9=Uncertain, 10=No-Face. Such rows are kept (for export)
 * with labels.trainable = 0 and left out of training and proposals.
 */
export const NON_EXPRESSION_CODES: Readonly<Record<number, string>> = { 8: 'none', 9: 'uncertain', 10: 'no-face' };
export const NON_EXPRESSION_LABELS: readonly string[] = Object.values(NON_EXPRESSION_CODES);
/** The quality flag (images.quality) of AffectNet's code 10: the annotators saw no face. */
export const NO_FACE = 'no-face';

const RANGES: Record<Exclude<LabelEncoding, 'names'>, string> = { fer2013: '0-6', rafdb: '1-7', affectnet: '0-10' };

const BY_NAME = new Map<string, ClassName>();
for (const [cls, names] of Object.entries(NAME_ALIASES) as [ClassName, readonly string[]][]) {
  for (const n of names) BY_NAME.set(n, cls);
}

export class LabelError extends FerCleanError {}
/** A label that names no FER class (e.g. 'pain'): collected per source so the error can list them all at once. */
export class UnknownLabelError extends LabelError {
  constructor(readonly label: string) {
    super(`unknown label '${label}': not a FER class (${describeLabels()})`);
  }
}

/** What a label in a source stands for: a class name, and whether it is an expression class that can train. */
export interface LabelClass {
  cls: string;
  trainable: boolean;
}

/**
 * Reads one label as written in a source (`raw`), by the source's encoding, without a taxonomy: FER class names and
 * their synonyms in any case (`Happy`, `HAPPINESS` -> happiness), numbers by the encoding, AffectNet's 8-10 as
 * non-expression labels, and, when the dataset declares its own classes (`custom`, see parseClassList), those names
 * (case-insensitive). Throws a LabelError (UnknownLabelError for a word that names no class).
 */
export function readLabel(raw: string, encoding: LabelEncoding, custom?: readonly string[]): LabelClass {
  const v = raw.trim();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    let cls: ClassName | undefined;
    if (encoding === 'fer2013') cls = FER2013_CODES[n];
    else if (encoding === 'rafdb') cls = n >= 1 ? RAFDB_CODES[n - 1] : undefined;
    else if (encoding === 'affectnet') {
      cls = AFFECTNET_CODES[n];
      if (!cls && NON_EXPRESSION_CODES[n]) return { cls: NON_EXPRESSION_CODES[n]!, trainable: false };
    } else
      throw new LabelError(
        `numeric label '${v}': say how numbers map to classes with --label-encoding fer2013 (0-6), rafdb (1-7) or affectnet (0-10)`,
      );
    if (!cls) throw new LabelError(`unknown label '${v}': ${encoding} labels are ${RANGES[encoding]}`);
    return { cls, trainable: true };
  }
  const named = BY_NAME.get(v.toLowerCase());
  if (custom) {
    const own = custom.find((c) => c.toLowerCase() === v.toLowerCase() || (named !== undefined && c === named));
    if (own === undefined) throw new LabelError(`label '${v}' is not one of the declared classes (${custom.join(', ')})`);
    return { cls: own, trainable: true };
  }
  if (!named) throw new UnknownLabelError(v);
  return { cls: named, trainable: true };
}

/**
 * A dataset's classes from the labels its source uses (`found`, canonical names): the seven basic expressions in
 * FER2013 order, plus contempt when the data has it (or `withContempt`); or the declared `custom` list as it is.
 */
export function taxonomyFor(found: Iterable<string>, opts: { withContempt?: boolean; custom?: readonly string[] } = {}): string[] {
  if (opts.custom) return [...opts.custom];
  return defaultTaxonomy(Boolean(opts.withContempt) || [...found].includes(CONTEMPT));
}

/** Most classes a dataset can have: review picks a class with the keys 1-9. */
export const MAX_CLASSES = 9;

/**
 * A declared class list (`--classes a,b,c`): 2-9 distinct names; names of FER classes (and their synonyms) become
 * the canonical names, any other name is kept as written. The order is the class order (review keys 1-9).
 */
export function parseClassList(text: string): string[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new FerCleanError(`--classes '${text}': an empty class name (write them comma-separated: happiness,pain,neutral)`);
  const control = names.find(hasControl);
  if (control !== undefined) throw new FerCleanError(`--classes: '${printable(control)}' holds a control character`);
  const classes = names.map((n) => (/^\d+$/.test(n) ? n : (BY_NAME.get(n.toLowerCase()) ?? n)));
  const bad = classes.find((c) => /^\d+$/.test(c) || NON_EXPRESSION_LABELS.includes(c.toLowerCase()));
  if (bad !== undefined) throw new FerCleanError(`--classes: '${bad}' cannot be a class name (a number, or a non-expression label)`);
  const seen = new Set<string>();
  for (const c of classes) {
    if (seen.has(c.toLowerCase())) throw new FerCleanError(`--classes: '${c}' is listed twice`);
    seen.add(c.toLowerCase());
  }
  if (classes.length < 2 || classes.length > MAX_CLASSES) {
    throw new FerCleanError(`--classes: ${classes.length} classes; a dataset has 2 to ${MAX_CLASSES} (review picks them with the keys 1-9)`);
  }
  return classes;
}

/**
 * Maps a label as written in a source to its canonical class name, by the source's encoding.
 * Numeric labels need an explicit numeric encoding; a word never maps to a number's class or vice versa.
 */
export function canonicalLabel(raw: string, encoding: LabelEncoding, taxonomy: readonly string[]): string {
  const v = raw.trim();
  const { cls, trainable } = readLabel(v, encoding);
  if (!trainable) throw new LabelError(`label '${v}' (${cls}) is not an expression class`);
  if (!taxonomy.includes(cls)) {
    throw new LabelError(`label '${v}' (${cls}) is not in this dataset's classes (${taxonomy.join(', ')})`);
  }
  return cls;
}

/**
 * A label a person wrote for a stored dataset (decide's label column): read as ingest reads the dataset's own labels
 * (readLabel: any case, synonyms such as happy, numbers by the dataset's encoding), and it must be one of the
 * dataset's classes. Throws a LabelError saying which classes there are.
 */
export function datasetClass(raw: string, encoding: LabelEncoding, taxonomy: readonly string[]): string {
  const v = raw.trim();
  let read: LabelClass;
  try {
    read = readLabel(v, encoding, taxonomy);
  } catch (e) {
    if (!(e instanceof LabelError)) throw e;
    throw new LabelError(`unknown label '${v}' (classes: ${taxonomy.join(', ')})`);
  }
  if (!read.trainable || !taxonomy.includes(read.cls)) throw new LabelError(`label '${v}' (${read.cls}) is not one of this dataset's classes (${taxonomy.join(', ')})`);
  return read.cls;
}

/** The FER class names and their accepted synonyms, for error messages. */
export function describeLabels(): string {
  return Object.values(NAME_ALIASES)
    .map((a) => a.join('/'))
    .join(', ');
}

/** Index of a canonical class in a taxonomy; throws on an unknown one (a programming error, not user input). */
export function classIndex(taxonomy: readonly string[], cls: string): number {
  const i = taxonomy.indexOf(cls);
  if (i < 0) throw new Error(`class '${cls}' is not in taxonomy [${taxonomy.join(', ')}]`);
  return i;
}

/** Writes a canonical class back in a numeric encoding (for `export --format same`). */
export function encodeLabel(cls: string, encoding: LabelEncoding): string {
  if (encoding === 'affectnet') {
    const i = AFFECTNET_CODES.indexOf(cls as ClassName);
    if (i >= 0) return String(i);
    const code = Object.entries(NON_EXPRESSION_CODES).find(([, name]) => name === cls)?.[0];
    if (code !== undefined) return code;
    return cls;
  }
  if (encoding === 'fer2013') return String(FER2013_CODES.indexOf(cls as ClassName));
  if (encoding === 'rafdb') return String(RAFDB_CODES.indexOf(cls as ClassName) + 1);
  return cls;
}
