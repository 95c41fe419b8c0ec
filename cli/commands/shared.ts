import { existsSync, rmSync } from 'node:fs';
import { FerCleanError } from '../../src/errors.js';
import { openStore, resolveDbPath, type DB } from '../../src/store/db.js';
import type { Io } from '../io.js';
import type { ReviewOption, ReviewOptionError } from '../../src/review/domain/options.js';

/** Opens the database named by --db / FER_CLEAN_DB for a command that needs existing data. */
export function openExisting(values: Record<string, unknown>, io: Io): DB {
  return openStore(resolveDbPath(values['db'] as string | undefined, io.env), { mustExist: true });
}

/**
 * Opens (or creates) the database for a command that writes; when the command fails and the file was new,
 * `discard` removes it again so a failed first ingest leaves nothing behind.
 */
export function openForWrite(values: Record<string, unknown>, io: Io): { db: DB; path: string; created: boolean; discard: () => void } {
  const path = resolveDbPath(values['db'] as string | undefined, io.env);
  const created = !existsSync(path);
  const db = openStore(path);
  return {
    db,
    path,
    created,
    discard: () => {
      db.close();
      if (created) for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    },
  };
}

export const pct = (n: number, d: number): string => (d === 0 ? '-' : `${((100 * n) / d).toFixed(1)}%`);

/**
 * A flag's text as a number, read as people write numbers: decimal digits, an optional sign, point and exponent
 * (`0.9`, `.5`, `1e-3`). Not what JavaScript's Number() also takes (`0x1`, `0b1`, `0o7`, `Infinity`): NaN for those.
 */
export function decimal(value: unknown): number {
  const text = String(value).trim();
  return /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
}

export function parseIntFlag(value: unknown, flag: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (String(value).trim() === '') throw new FerCleanError(`${flag} needs a number`);
  if (!Number.isInteger(n) || n < min) throw new FerCleanError(`${flag} must be an integer >= ${min}, got '${String(value)}'`);
  return n;
}

/** A flag's value as a finite number (its range is the library's to check). */
export function parseNumberFlag(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (String(value).trim() === '' || !Number.isFinite(n)) throw new FerCleanError(`${flag} must be a number, got '${String(value)}'`);
  return n;
}

/** A flag's value as a whole number (its range is the library's to check). */
export function parseWholeFlag(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (String(value).trim() === '' || !Number.isInteger(n)) throw new FerCleanError(`${flag} must be a whole number, got '${String(value)}'`);
  return n;
}

/** Checks a flag's value against a fixed set of choices. */
export function choiceFlag<T extends string>(value: unknown, flag: string, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as T)) throw new FerCleanError(`${flag} must be one of ${choices.join(', ')}, got '${String(value)}'`);
  return value as T;
}

/** The flag of each review option (src/review/domain/options.ts): the library's complaints are told in flags. */
const REVIEW_FLAG_OF: Record<ReviewOption, string> = {
  minEstimate: '--min-estimate',
  limit: '--limit',
  order: '--order',
  annotator: '--annotator',
};

/** A review option's complaint in the CLI's words: `minEstimate must be ...` -> `--min-estimate must be ...`. */
export const reviewOptionInFlags = (e: ReviewOptionError): string =>
  `${REVIEW_FLAG_OF[e.option]} must be ${e.expected}, got '${String(e.value)}'`;
