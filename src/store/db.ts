import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FerCleanError } from '../errors.js';
import { checkRegularOrAbsent } from '../files.js';
import { migrationsDir } from '../paths.js';

export type DB = Database.Database;

export const DEFAULT_DB = 'fer-clean.db';

/** Where the database lives: --db, else FER_CLEAN_DB, else ./fer-clean.db. */
export function resolveDbPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['FER_CLEAN_DB'] ?? DEFAULT_DB;
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!m) continue;
    out.push({ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), 'utf8') });
  }
  out.sort((a, b) => a.version - b.version);
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations: expected version ${i + 1}, found ${m.version}_${m.name}.sql`);
  });
  return out;
}

export interface OpenOptions {
  /** Open an existing database only; a missing file is an error rather than a new empty database. */
  mustExist?: boolean;
  readonly?: boolean;
}

/**
 * Opens (creating if needed) the SQLite store in WAL mode and applies pending migrations, each in its own
 * transaction and recorded in schema_migrations. A database written by newer code is refused.
 */
export function openStore(path: string, opts: OpenOptions = {}): DB {
  let db: DB;
  // SQLite would block on a fifo and read a device: refuse anything but a regular file (or a new path) by name
  if (path !== ':memory:' && path !== '') checkRegularOrAbsent(path);
  try {
    db = new Database(path, { fileMustExist: opts.mustExist ?? false, readonly: opts.readonly ?? false });
  } catch (e) {
    const msg = (e as Error).message;
    if (opts.mustExist && /unable to open|does not exist|no such file/i.test(msg)) {
      throw new FerCleanError(`${path}: no such database (run \`fer-clean ingest\` first, or pass --db PATH)`);
    }
    throw new FerCleanError(`${path}: cannot open database: ${msg}`);
  }
  try {
    // First, so that every later step (the switch to WAL, the migrations) waits for a concurrent opener.
    db.pragma('busy_timeout = 5000');
    if (!opts.readonly) enableWal(db);
    db.pragma('foreign_keys = ON');
    if (!opts.readonly) db.pragma('synchronous = NORMAL');
    migrate(db, path);
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_NOTADB') {
      throw new FerCleanError(`${path}: not a SQLite database`);
    }
    throw e;
  }
  return db;
}

/**
 * PRAGMA journal_mode = WAL, retried for up to 5 s on SQLITE_BUSY. Switching needs an exclusive lock; when two first
 * openers of a new file both hold a shared lock and both ask for it, SQLite answers one of them SQLITE_BUSY at once
 * (deadlock avoidance: the busy handler is not called), so busy_timeout alone does not cover this race.
 */
function enableWal(db: DB): void {
  const deadline = Date.now() + 5000;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw e;
      Atomics.wait(pause, 0, 0, 5 + Math.floor(Math.random() * 20));
    }
  }
}

/**
 * Brings the schema up to date. Reading the version and applying what is missing happen in one IMMEDIATE
 * transaction, so two processes opening a new database at once serialise on SQLite's write lock: the second
 * sees the first one's tables instead of creating them again.
 */
function migrate(db: DB, path: string): void {
  const migrations = loadMigrations();
  const latest = migrations.length;
  const check = (): { version: number; fresh: boolean } => {
    const hasTable = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
    if (!hasTable) {
      const tables = db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'`).get() as { n: number };
      if (tables.n > 0) throw new FerCleanError(`${path}: not a fer-clean database (no schema_migrations table)`);
      return { version: 0, fresh: true };
    }
    const row = db.prepare(`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`).get() as { v: number };
    if (row.v > latest) {
      throw new FerCleanError(
        `${path}: database schema version ${row.v} is newer than this fer-clean (knows up to ${latest}); upgrade fer-clean`,
      );
    }
    return { version: row.v, fresh: false };
  };
  // Up to date (the usual case): a read (one snapshot, so another opener's commit cannot fall between its two
  // queries), no write lock.
  const seen = db.transaction(check).deferred();
  if (!seen.fresh && seen.version === latest) return;
  if (db.readonly) {
    if (seen.fresh) throw new FerCleanError(`${path}: empty database opened read-only`);
    throw new FerCleanError(`${path}: needs migration ${seen.version + 1} but was opened read-only`);
  }
  db.transaction(() => {
    const now = check(); // again, under the write lock: another process may have migrated meanwhile
    if (now.fresh) {
      db.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    }
    const record = db.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`);
    for (const m of migrations) {
      if (m.version <= now.version) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, new Date().toISOString());
    }
  }).immediate();
}

export function schemaVersion(db: DB): number {
  return (db.prepare(`SELECT coalesce(max(version), 0) AS v FROM schema_migrations`).get() as { v: number }).v;
}

export const nowIso = (): string => new Date().toISOString();
