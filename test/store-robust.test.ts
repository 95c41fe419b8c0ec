import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { existsSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore, schemaVersion, loadMigrations } from '../src/store/db.js';
import { packageRoot } from '../src/paths.js';
import { useTempDir } from './helpers.js';

const t = useTempDir();

/** Runs `node -e code` and resolves with its exit code and output. */
function node(code: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (c) => resolve({ code: c, out }));
  });
}

describe('schema creation under concurrent first opens', () => {
  it('processes opening one new database at the same moment all succeed, and the schema is made once', async () => {
    const dbModule = join(packageRoot(), 'dist', 'src', 'store', 'db.js');
    expect(existsSync(dbModule), 'run `npm run build` first').toBe(true);
    const rounds = 4;
    const perRound = 5;
    for (let r = 0; r < rounds; r++) {
      const path = join(t.dir, `new-${r}.db`);
      // Every process waits for the same instant, then opens: the first opens of a new file race for real.
      const at = Date.now() + 700;
      const code = `const { openStore } = await import(${JSON.stringify(dbModule)});
        while (Date.now() < ${at}) {}
        openStore(${JSON.stringify(path)}).close();`;
      const results = await Promise.all(Array.from({ length: perRound }, () => node(code)));
      for (const res of results) expect(res, res.out).toMatchObject({ code: 0 });
      const db = openStore(path);
      expect(schemaVersion(db)).toBe(loadMigrations().length);
      expect((db.prepare(`SELECT count(*) AS n FROM schema_migrations`).get() as { n: number }).n).toBe(loadMigrations().length);
      db.close();
    }
  });
});

describe('SQLite failures are one line naming the database and what to do (rc 1)', () => {
  it('a truncated database: rc 1, one line, no stack trace', async () => {
    const { run } = await import('../cli/run.js');
    const { captureIo, fixture } = await import('./helpers.js');
    const { ingest } = await import('../src/ingest/index.js');
    const path = join(t.dir, 'cut.db');
    const db = openStore(path);
    await ingest(db, { source: fixture('ferplus', 'labels.csv') });
    db.close(); // checkpoints the WAL into the file
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(64 * 1024);
    truncateSync(path, Math.floor(size / 3));
    const io = captureIo(t.dir);
    const code = await run(['export', join(t.dir, 'out.csv'), '--db', path], io);
    expect(code).toBe(1);
    const lines = io.stderr.text.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^fer-clean export: ${path}: the database file is damaged \\(database disk image is malformed, SQLITE_CORRUPT\\); restore it from a backup`));
    expect(existsSync(join(t.dir, 'out.csv'))).toBe(false);
  });

  it('a full disk, a read-only database and a busy one get their own advice (real SQLite errors)', async () => {
    const { describeSqliteError } = await import('../src/store/sqlite-errors.js');
    const path = join(t.dir, 'a.db');
    const db = openStore(path);
    // A full disk, made by capping the file's pages (no real device is filled).
    db.pragma('max_page_count = ' + String((db.pragma('page_count', { simple: true }) as number) + 1));
    const full = catchError(() => db.exec(`CREATE TABLE filler (x); INSERT INTO filler SELECT randomblob(4000) FROM (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100) SELECT i FROM c)`));
    expect(describeSqliteError(full, path)).toMatch(new RegExp(`^${path}: the disk is full \\(database or disk is full, SQLITE_FULL\\); nothing was changed`));
    db.close();
    const ro = new Database(path, { readonly: true });
    const readonly = catchError(() => ro.exec(`CREATE TABLE y (a)`));
    ro.close();
    expect(describeSqliteError(readonly, path)).toMatch(/the database cannot be written \(attempt to write a readonly database, SQLITE_READONLY\); .*make the file and its folder writable/);
    const a = new Database(path);
    const b = new Database(path, { timeout: 10 });
    a.exec('BEGIN IMMEDIATE');
    const busy = catchError(() => b.exec('BEGIN IMMEDIATE'));
    a.exec('ROLLBACK');
    a.close();
    b.close();
    expect(describeSqliteError(busy, path)).toMatch(/the database is busy: another fer-clean process held its lock/);
    expect(describeSqliteError(new Error('plain'), path)).toBeUndefined();
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}
