/**
 * The review verbs' options, checked once at the library's door (nextItems, decideFromCsv, bulkAccept and its
 * preview, undoLastScripted, ReviewSession.open) and named as the library names them: minEstimate, limit, order,
 * annotator. The CLI parses types only and tells these messages back in its flags (cli/commands/shared.ts).
 */
import { FerCleanError } from '../../errors.js';
import { annotatorName } from '../../printable.js';

export type ReviewOption = 'minEstimate' | 'limit' | 'order' | 'annotator';

/** A review option out of range: `option` is its library name; the message reads `<option> must be <expected>, got '<value>'`. */
export class ReviewOptionError extends FerCleanError {
  constructor(
    readonly option: ReviewOption,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${option} must be ${expected}, got '${String(value)}'`);
  }
}

/** The bulk accept's threshold: a number in (0, 1]. */
export function checkMinEstimate(p: number): number {
  if (!(typeof p === 'number' && Number.isFinite(p) && p > 0 && p <= 1)) throw new ReviewOptionError('minEstimate', p, 'a number in (0, 1]');
  return p;
}

/** Most items to return: a whole number >= 1 (undefined: all). */
export function checkLimit(limit: number | undefined): number | undefined {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) throw new ReviewOptionError('limit', limit, 'a whole number >= 1');
  return limit;
}

/** An order among `orders` (undefined: the verb's default). */
export function checkOrder<T extends string>(order: string | undefined, orders: readonly T[]): T | undefined {
  if (order !== undefined && !orders.includes(order as T)) throw new ReviewOptionError('order', order, `one of ${orders.join(', ')}`);
  return order as T | undefined;
}

/** Who decides: a name that is not empty or blank and holds no control character; returned without surrounding spaces. */
export function checkAnnotator(name: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : '';
  if (!trimmed) throw new ReviewOptionError('annotator', name, 'a name (not empty)');
  return annotatorName(trimmed);
}
