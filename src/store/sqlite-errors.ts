/**
 * SQLite failures described for the user: what happened to the database and what to do, in one line. The CLI
 * prints this instead of an internal error with a stack trace; nothing here prints.
 */

/** True for an error raised by SQLite (better-sqlite3's SqliteError carries an SQLITE_* code). */
export function isSqliteError(e: unknown): e is Error & { code: string } {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('SQLITE_');
}

/**
 * One line naming the database `path`, what went wrong and what to do; undefined when `e` is not a SQLite error.
 * A failed statement rolls its transaction back, so each message can say the database was left as it was,
 * except for damage that was there before.
 */
export function describeSqliteError(e: unknown, path: string): string | undefined {
  if (!isSqliteError(e)) return undefined;
  const code = e.code;
  const what = `(${e.message.split('\n')[0]}, ${code})`;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return `${path}: the database file is damaged ${what}; restore it from a backup, or move it aside and ingest again (\`sqlite3 ${path} .recover\` may save its decisions)`;
  }
  if (code === 'SQLITE_FULL') {
    return `${path}: the disk is full ${what}; nothing was changed: free some space and run the command again`;
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    return `${path}: the database cannot be written ${what}; fer-clean writes the file and, beside it, ${path}-wal and ${path}-shm: make the file and its folder writable, or copy the database somewhere writable and pass --db`;
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return `${path}: cannot open the database file ${what}; check that its folder exists and is readable and writable`;
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return `${path}: the database is busy: another fer-clean process held its lock for too long ${what}; nothing was changed: run the command again`;
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return `${path}: the disk reported an input/output error ${what}; nothing was changed: check the disk (a full disk shows this too) and run the command again`;
  }
  return `${path}: database error ${what}; nothing was changed`;
}
