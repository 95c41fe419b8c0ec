/**
 * A problem with the user's input or environment: the CLI prints `message` (no stack trace) and exits non-zero.
 * Library code throws it; it never prints or exits.
 */
export class FerCleanError extends Error {
  override readonly name = 'FerCleanError';
  constructor(
    message: string,
    /** Further problems of the same kind, when several were found at once (e.g. every bad CSV line). */
    readonly details: readonly string[] = [],
  ) {
    super(message);
  }
}

export function isFerCleanError(e: unknown): e is FerCleanError {
  return e instanceof FerCleanError;
}
