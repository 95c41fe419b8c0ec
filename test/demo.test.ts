import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { queueTop } from '../src/review/report/top.js';
import { openStore } from '../src/store/db.js';
import { resolveRun } from '../src/store/runs.js';
import { captureIo, fixture, tempDir } from './helpers.js';

describe('fer-clean demo', () => {
  it('runs ingest, embed, train (scn and ce), report with the comparison and a sheet, and export; prints the review command', { timeout: 180_000 }, async () => {
    const t = tempDir();
    try {
      // a slice of the bundled faces keeps the suite quick; `npm run demo` uses all of them
      const io = captureIo(t.dir);
      const code = await run(['demo', '--backend', 'wasm', '--faces', '300'], io);
      expect(code, io.stderr.text).toBe(0);
      for (const step of ['ingest', 'embed', 'train', 'train --method ce', 'report --run 1 --sheet', 'export']) {
        expect(io.stdout.text).toContain(`$ fer-clean ${step}`);
      }
      expect(io.stdout.text).toMatch(/review --db fer-clean-demo\.db --run 1 --annotator/);

      const db = openStore(join(t.dir, 'fer-clean-demo.db'), { mustExist: true });
      const n = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
      const bundled = parse(readFileSync(fixture('demo', 'labels.csv')), { columns: true }) as Record<string, string>[];
      const images = n(`SELECT count(*) AS n FROM images`);
      expect(images).toBeGreaterThanOrEqual(300);
      expect(images).toBeLessThan(320);
      expect(bundled.length).toBeGreaterThan(5000);
      expect(n(`SELECT count(*) AS n FROM embeddings`)).toBe(images);
      expect(db.prepare(`SELECT id, method, status FROM runs ORDER BY id`).all()).toEqual([
        { id: 1, method: 'scn', status: 'done' },
        { id: 2, method: 'ce', status: 'done' },
      ]);

      // the comparison prints what the runs stored: test accuracy and the top of each review queue against FER+
      const report = io.stdout.text.slice(io.stdout.text.indexOf('SCN against the baseline'));
      const accuracy = /test accuracy against the FER\+ majority \((\d+) test faces\)\s+([\d.]+)%\s+([\d.]+)%/.exec(report);
      expect(accuracy, report).not.toBeNull();
      for (const [k, id] of [[2, 1], [3, 2]] as const) {
        const m = JSON.parse((db.prepare(`SELECT metrics FROM runs WHERE id = ?`).get(id) as { metrics: string }).metrics) as { test_accuracy_reference: number };
        expect(Number(accuracy![k])).toBeCloseTo(100 * m.test_accuracy_reference, 1);
      }
      const tops = [1, 2].map((id) => queueTop(db, resolveRun(db, { runId: id }), 100));
      expect(report).toContain(`given label wrong (FER+ disagrees with it)`.padEnd(48));
      const right = /proposed label right \(it is the FER\+ majority\)\s+(\d+)\/(\d+) \(\d+%\)\s+(\d+)\/(\d+)/.exec(report);
      expect(right, report).not.toBeNull();
      expect(right!.slice(1, 5).map(Number)).toEqual([tops[0]!.rightProposal, tops[0]!.scored, tops[1]!.rightProposal, tops[1]!.scored]);
      db.close();

      const sheet = await sharp(join(t.dir, 'fer-clean-demo-sheet.png')).metadata();
      expect(sheet.format).toBe('png');
      expect(sheet.height).toBeGreaterThan(400);

      const rows = parse(readFileSync(join(t.dir, 'fer-clean-demo-labels.csv')), { columns: true }) as Record<string, string>[];
      expect(rows).toHaveLength(images);
      expect(rows.every((r) => r['final_label'] === r['original_label'] && r['importance'] !== '')).toBe(true);

      // a second demo reuses the database: nothing re-ingested or re-embedded, two more runs
      const again = captureIo(t.dir);
      expect(await run(['demo', '--backend', 'wasm', '--faces', '300'], again), again.stderr.text).toBe(0);
      expect(again.stdout.text).toMatch(/0 added, 0 updated, \d+ unchanged/);
      expect(again.stdout.text).toMatch(/computed 0,/);
      expect(again.stdout.text).toMatch(/--run 3 /);
    } finally {
      t.cleanup();
    }
  });
});
