import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, tempDir } from './helpers.js';

describe('fer-clean demo', () => {
  it('runs ingest, embed, train, report and export on the fixtures and prints the review command', { timeout: 180_000 }, async () => {
    const t = tempDir();
    try {
      const io = captureIo(t.dir);
      const code = await run(['demo', '--backend', 'wasm'], io);
      expect(code, io.stderr.text).toBe(0);
      for (const step of ['ingest', 'embed', 'train', 'report', 'export']) expect(io.stdout.text).toMatch(new RegExp(`\\$ fer-clean ${step}`));
      expect(io.stdout.text).toMatch(/review --db fer-clean-demo\.db --run 1 --annotator/);

      const db = openStore(join(t.dir, 'fer-clean-demo.db'), { mustExist: true });
      const n = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
      const images = readFileSync(fixture('ferplus', 'labels.csv'), 'utf8').trim().split('\n').length - 1;
      expect(n(`SELECT count(*) AS n FROM images`)).toBe(images);
      expect(n(`SELECT count(*) AS n FROM embeddings`)).toBe(images);
      expect(n(`SELECT count(*) AS n FROM runs WHERE status = 'done' AND method = 'scn'`)).toBe(1);
      expect(n(`SELECT count(*) AS n FROM run_images WHERE run_id = 1`)).toBe(images);
      db.close();

      const rows = parse(readFileSync(join(t.dir, 'fer-clean-demo-labels.csv')), { columns: true }) as Record<string, string>[];
      expect(rows).toHaveLength(images);
      expect(rows.every((r) => r['final_label'] === r['original_label'] && r['importance'] !== '')).toBe(true);

      // a second demo reuses the database: nothing re-ingested or re-embedded, one more run
      const again = captureIo(t.dir);
      expect(await run(['demo', '--backend', 'wasm'], again)).toBe(0);
      expect(again.stdout.text).toMatch(/0 added, 0 updated, \d+ unchanged/);
      expect(again.stdout.text).toMatch(/--run 2 /);
    } finally {
      t.cleanup();
    }
  });
});
