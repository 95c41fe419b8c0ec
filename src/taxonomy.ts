import { FerCleanError } from './errors.js';

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
export type LabelEncoding = 'names' | 'fer2013' | 'rafdb';
export const LABEL_ENCODINGS: readonly LabelEncoding[] = ['names', 'fer2013', 'rafdb'];

/** FER2013 `emotion` column: 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral. */
const FER2013_CODES: readonly ClassName[] = BASIC_CLASSES;
/** RAF-DB basic emotion list: 1=Surprise 2=Fear 3=Disgust 4=Happiness 5=Sadness 6=Anger 7=Neutral. */
const RAFDB_CODES: readonly ClassName[] = ['surprise', 'fear', 'disgust', 'happiness', 'sadness', 'anger', 'neutral'];

const BY_NAME = new Map<string, ClassName>();
for (const [cls, names] of Object.entries(NAME_ALIASES) as [ClassName, readonly string[]][]) {
  for (const n of names) BY_NAME.set(n, cls);
}

export class LabelError extends FerCleanError {}

/**
 * Maps a label as written in a source to its canonical class name, by the source's encoding.
 * Numeric labels need an explicit numeric encoding; a word never maps to a number's class or vice versa.
 */
export function canonicalLabel(raw: string, encoding: LabelEncoding, taxonomy: readonly string[]): string {
  const v = raw.trim();
  let cls: ClassName | undefined;
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (encoding === 'fer2013') cls = FER2013_CODES[n];
    else if (encoding === 'rafdb') cls = n >= 1 ? RAFDB_CODES[n - 1] : undefined;
    else
      throw new LabelError(
        `numeric label '${v}': say how numbers map to classes with --label-encoding fer2013 (0-6) or rafdb (1-7)`,
      );
    if (!cls) {
      const range = encoding === 'fer2013' ? '0-6' : '1-7';
      throw new LabelError(`unknown label '${v}': ${encoding} labels are ${range}`);
    }
  } else {
    cls = BY_NAME.get(v.toLowerCase());
    if (!cls) throw new LabelError(`unknown label '${v}': expected one of ${describeNames()}`);
  }
  if (!taxonomy.includes(cls)) {
    throw new LabelError(`label '${v}' (${cls}) is not in this dataset's classes (${taxonomy.join(', ')})`);
  }
  return cls;
}

function describeNames(): string {
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
  if (encoding === 'fer2013') return String(FER2013_CODES.indexOf(cls as ClassName));
  if (encoding === 'rafdb') return String(RAFDB_CODES.indexOf(cls as ClassName) + 1);
  return cls;
}
