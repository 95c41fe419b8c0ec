import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, schemaVersion, loadMigrations } from '../src/store/db.js';
import { packageRoot } from '../src/paths.js';
import { tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => (t = tempDir()));
afterEach(() => t.cleanup());

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
    const rounds = 6;
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
