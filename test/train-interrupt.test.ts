import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { backboneVersion, resolveBackbone } from '../src/features/backbones.js';
import { saveEmbeddings } from '../src/features/store.js';
import { ingest } from '../src/ingest/index.js';
import { packageRoot } from '../src/paths.js';
import { trainHead } from '../src/scn/train.js';
import { openStore } from '../src/store/db.js';
import { captureIo, fixture, tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
let dbPath: string;

/** The fixture faces with stand-in embeddings (seeded noise around a point per class): training needs no network. */
beforeAll(async () => {
  t = tempDir();
  dbPath = join(t.dir, 'x.db');
  const db = openStore(dbPath);
  await ingest(db, { source: fixture('ferplus', 'labels.csv') });
  const part = resolveBackbone('faceexpr').parts[0]!;
  const rows = db.prepare(`SELECT i.id, l.given FROM images i JOIN labels l ON l.image_id = i.id ORDER BY i.id`).all() as { id: number; given: string }[];
  const vectors = new Float32Array(rows.length * part.dim);
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  rows.forEach((r, i) => {
    for (let d = 0; d < part.dim; d++) vectors[i * part.dim + d] = rnd() + (d % 7 === r.given.length % 7 ? 1 : 0);
  });
  saveEmbeddings(db, { ids: rows.map((r) => r.id), vectors }, part, backboneVersion(part), 'test');
  db.close();
});
afterAll(() => t.cleanup());

const statusOf = (runId: number): { status: string; finished_at: string | null; metrics: string | null } => {
  const db = openStore(dbPath);
  try {
    return db.prepare(`SELECT status, finished_at, metrics FROM runs WHERE id = ?`).get(runId) as never;
  } finally {
    db.close();
  }
};

/** `fer-clean train` in a process of its own, signalled once its first epochs are done. */
async function trainAndSignal(signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
  const cli = join(packageRoot(), 'dist', 'cli', 'main.js');
  expect(existsSync(cli), 'run `npm run build` first').toBe(true);
  const child = spawn(process.execPath, [cli, 'train', '--db', dbPath, '--epochs', '100000', '--hidden', '16', '--batch', '32'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const start = Date.now();
  // The progress line (every 10% off a terminal) shows once the first epoch is done: training is under way.
  while (!/train scn \[/.test(stderr) && Date.now() - start < 30_000) await new Promise((r) => setTimeout(r, 20));
  expect(stderr).toMatch(/train scn \[/);
  child.kill(signal);
  const code = await closed;
  return { code, stderr };
}

describe('a signal during train marks the run interrupted and says so', () => {
  it('Ctrl-C (SIGINT): exit 130, one line naming the run, status interrupted; report says why', async () => {
    const { code, stderr } = await trainAndSignal('SIGINT');
    expect(stderr).toMatch(/^fer-clean train: interrupted \(SIGINT\): run 1 is marked interrupted and holds no results; train again$/m);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(code).toBe(130);
    const r = statusOf(1);
    expect(r.status).toBe('interrupted');
    expect(r.finished_at).not.toBeNull();
    const io = captureIo(t.dir);
    expect(await run(['report', '--run', '1', '--db', dbPath], io)).toBe(1);
    expect(io.stderr.text).toMatch(/run 1 is interrupted: nothing to report/);
  });

  it('SIGTERM: exit 143, status interrupted', async () => {
    const { code, stderr } = await trainAndSignal('SIGTERM');
    expect(stderr).toMatch(/interrupted \(SIGTERM\): run 2 is marked interrupted/);
    expect(code).toBe(143);
    expect(statusOf(2).status).toBe('interrupted');
  });

  it('trainHead stops at its next pause once the signal is aborted', async () => {
    const N = 400;
    const dim = 8;
    const features = Float32Array.from({ length: N * dim }, (_, i) => Math.sin(i));
    const labels = Int32Array.from({ length: N }, (_, i) => i % 3);
    const stop = new AbortController();
    let epochs = 0;
    const training = trainHead(
      { features, dim, classes: 3, labels, train: Array.from({ length: N }, (_, i) => i) },
      { epochs: 1_000_000, hidden: 8, dropout: 0, lr: 1e-3, lrDecay: 1, weightDecay: 0, batchSize: 16, standardize: false, seed: 1, method: 'ce' },
      () => {
        if (++epochs === 3) setImmediate(() => stop.abort('test'));
      },
      stop.signal,
    );
    await expect(training).rejects.toBe('test');
    expect(epochs).toBeGreaterThanOrEqual(3);
    expect(epochs).toBeLessThan(1000);
  });
});
