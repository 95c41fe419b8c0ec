import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, openStore, resolveDbPath, schemaVersion } from '../src/store/db.js';
import { resolveDataset } from '../src/store/datasets.js';
import { canonicalLabel, defaultTaxonomy, encodeLabel } from '../src/taxonomy.js';
import { tempDir } from './helpers.js';

let cleanup: () => void = () => {};
afterEach(() => cleanup());

describe('store', () => {
  it('creates the schema in WAL mode and records every migration', () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const db = openStore(join(t.dir, 'a.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(schemaVersion(db)).toBe(loadMigrations().length);
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type='table'`).all() as { name: string }[]).map((r) => r.name);
    for (const t of ['datasets', 'images', 'labels', 'embeddings', 'runs', 'run_images', 'run_noise', 'run_epochs', 'decisions', 'claims']) {
      expect(tables).toContain(t);
    }
    db.close();
    // opening again applies nothing new
    const again = openStore(join(t.dir, 'a.db'));
    expect((again.prepare(`SELECT count(*) AS n FROM schema_migrations`).get() as { n: number }).n).toBe(loadMigrations().length);
    again.close();
  });

  it('migration 004 moves stored embeddings into a rowid table, keeping every row and the one-per-key rule', () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const path = join(t.dir, 'v3.db');
    // a database as migration 3 left it, with one embedding in the WITHOUT ROWID table
    const raw = new Database(path);
    raw.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
    for (const m of loadMigrations().filter((m) => m.version <= 3)) {
      raw.exec(m.sql);
      raw.prepare(`INSERT INTO schema_migrations VALUES (?, ?, 'x')`).run(m.version, m.name);
    }
    raw.exec(`INSERT INTO datasets (id, name, format, source, root, taxonomy, created_at, updated_at) VALUES (1, 'd', 'csv', '/s', '/r', '[]', 'x', 'x');
              INSERT INTO images (id, dataset_id, path, sha256, width, height, channels) VALUES (7, 1, 'a.png', 'h', 48, 48, 1);`);
    const vector = Buffer.from(new Float32Array([1.5, -2, 3]).buffer);
    raw.prepare(`INSERT INTO embeddings VALUES (7, 'faceexpr', 'v1', 3, ?, 'wasm', 'x')`).run(vector);
    expect((raw.prepare(`SELECT sql FROM sqlite_master WHERE name = 'embeddings'`).get() as { sql: string }).sql).toMatch(/WITHOUT ROWID/);
    raw.close();

    const db = openStore(path);
    expect(schemaVersion(db)).toBe(loadMigrations().length);
    expect((db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'embeddings'`).get() as { sql: string }).sql).not.toMatch(/WITHOUT ROWID/);
    const row = db.prepare(`SELECT image_id, backbone, backbone_version, dim, vector, backend FROM embeddings`).get() as { vector: Buffer };
    expect(row).toMatchObject({ image_id: 7, backbone: 'faceexpr', backbone_version: 'v1', dim: 3, backend: 'wasm' });
    expect(Buffer.compare(row.vector, vector)).toBe(0);
    // still one row per (image, backbone, version): a second insert of the same key replaces it
    db.prepare(`INSERT OR REPLACE INTO embeddings (image_id, backbone, backbone_version, dim, vector, backend, created_at) VALUES (7, 'faceexpr', 'v1', 3, ?, 'onnxruntime', 'y')`).run(vector);
    expect(db.prepare(`SELECT count(*) AS n, max(backend) AS b FROM embeddings`).get()).toEqual({ n: 1, b: 'onnxruntime' });
    db.close();
  });

  it('refuses a database written by newer code', () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const path = join(t.dir, 'new.db');
    openStore(path).close();
    const raw = new Database(path);
    raw.prepare(`INSERT INTO schema_migrations VALUES (999, 'future', 'x')`).run();
    raw.close();
    expect(() => openStore(path)).toThrow(/schema version 999 is newer than this fer-clean/);
  });

  it('refuses a file that is not a fer-clean database, and a missing one when it must exist', () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const other = join(t.dir, 'other.db');
    const raw = new Database(other);
    raw.exec('CREATE TABLE x (a)');
    raw.close();
    expect(() => openStore(other)).toThrow(/not a fer-clean database/);
    writeFileSync(join(t.dir, 'text.db'), 'hello, this is not sqlite at all, just some text that is long enough');
    expect(() => openStore(join(t.dir, 'text.db'))).toThrow(/not a SQLite database|not a database/);
    expect(() => openStore(join(t.dir, 'missing.db'), { mustExist: true })).toThrow(/no such database/);
  });

  it('resolves the database path from --db, then FER_CLEAN_DB, then the default', () => {
    expect(resolveDbPath('x.db', { FER_CLEAN_DB: 'y.db' })).toBe('x.db');
    expect(resolveDbPath(undefined, { FER_CLEAN_DB: 'y.db' })).toBe('y.db');
    expect(resolveDbPath(undefined, {})).toBe('fer-clean.db');
  });

  it('says clearly when there is no dataset or the choice is ambiguous', () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const db = openStore(join(t.dir, 'a.db'));
    expect(() => resolveDataset(db)).toThrow(/no dataset yet: run `fer-clean ingest/);
    const ins = db.prepare(`INSERT INTO datasets (name, format, source, root, taxonomy, created_at, updated_at) VALUES (?, 'csv', '/s', '/r', '[]', 'now', 'now')`);
    ins.run('a');
    expect(resolveDataset(db).name).toBe('a');
    ins.run('b');
    expect(() => resolveDataset(db)).toThrow(/holds 2 datasets \(a, b\): pick one with --dataset/);
    expect(resolveDataset(db, 'b').name).toBe('b');
    expect(() => resolveDataset(db, 'c')).toThrow(/no dataset named 'c'/);
    db.close();
  });
});

describe('taxonomy', () => {
  const tax = defaultTaxonomy();
  it('maps word aliases and numeric codes by their declared encoding only', () => {
    expect(canonicalLabel('Happy', 'names', tax)).toBe('happiness');
    expect(canonicalLabel('angry', 'names', tax)).toBe('anger');
    expect(canonicalLabel('sad', 'names', tax)).toBe('sadness');
    expect(canonicalLabel('0', 'fer2013', tax)).toBe('anger');
    expect(canonicalLabel('6', 'fer2013', tax)).toBe('neutral');
    expect(canonicalLabel('1', 'rafdb', tax)).toBe('surprise');
    expect(canonicalLabel('7', 'rafdb', tax)).toBe('neutral');
    expect(() => canonicalLabel('3', 'names', tax)).toThrow(/--label-encoding/);
    expect(() => canonicalLabel('7', 'fer2013', tax)).toThrow(/fer2013 labels are 0-6/);
    expect(() => canonicalLabel('0', 'rafdb', tax)).toThrow(/rafdb labels are 1-7/);
    expect(() => canonicalLabel('bored', 'names', tax)).toThrow(/unknown label 'bored'/);
    expect(() => canonicalLabel('contempt', 'names', tax)).toThrow(/not in this dataset's classes/);
    expect(canonicalLabel('contempt', 'names', defaultTaxonomy(true))).toBe('contempt');
  });
  it('encodes back to the same numbers', () => {
    for (const enc of ['fer2013', 'rafdb'] as const) {
      for (const c of tax) expect(canonicalLabel(encodeLabel(c, enc), enc, tax)).toBe(c);
    }
  });
});
