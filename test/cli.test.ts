import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { commands } from '../cli/commands/index.js';
import { packageRoot } from '../src/paths.js';
import { captureIo } from './helpers.js';

const main = join(packageRoot(), 'dist', 'cli', 'main.js');

describe('fer-clean CLI', () => {
  it('lists every command with its summary, and each command has its own --help', async () => {
    const io = captureIo();
    expect(await run(['--help'], io)).toBe(0);
    for (const c of ['ingest', 'embed', 'train', 'report', 'review', 'export', 'demo']) expect(io.stdout.text).toMatch(new RegExp(`^  ${c} +\\S`, 'm'));
    for (const c of commands) {
      const h = captureIo();
      expect(await run([c.name, '--help'], h)).toBe(0);
      expect(h.stdout.text).toMatch(new RegExp(`usage: fer-clean ${c.name}`));
      expect((await c.load()).name).toBe(c.name);
    }
  });

  it('an unknown command or flag is a usage error (exit 2), not a stack trace', async () => {
    const io = captureIo();
    expect(await run(['frobnicate'], io)).toBe(2);
    expect(io.stderr.text).toMatch(/unknown command 'frobnicate'/);
    const io2 = captureIo();
    expect(await run(['export', 'x.csv', '--frob'], io2)).toBe(2);
    expect(io2.stderr.text).toMatch(/Unknown option '--frob'/);
    expect(io2.stderr.text).not.toMatch(/\n\s+at /);
  });

  it('a reader that closes the pipe early (`| head`) ends the CLI quietly', async () => {
    expect(existsSync(main), 'run `npm run build` first').toBe(true);
    const child = spawn(process.execPath, [main, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // as `head` does once it has its lines
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  });
});

describe('progress on standard error', () => {
  it('formats durations and prints a line per tenth when stderr is not a terminal', async () => {
    const { formatDuration } = await import('../src/format.js');
    expect([formatDuration(42.4), formatDuration(187), formatDuration(7500), formatDuration(Infinity)]).toEqual(['42s', '3m07s', '2h05m', '--']);
    const { ProgressBar } = await import('../cli/progress.js');
    const io = captureIo();
    const bar = new ProgressBar(io, 'ingest', 200);
    for (let i = 1; i <= 200; i++) bar.update(i);
    bar.finish();
    const lines = io.stderr.text.trim().split('\n');
    expect(lines).toHaveLength(11); // 0%, 10%, ..., 100%
    expect(lines.at(-1)).toMatch(/^ingest \[#{24}\] 200\/200 images (\d+|--)\/s ETA 0s$/);
  });

  it('the rate counts from the first update: a first chunk of 256 is not 256,000 images/s', async () => {
    const { ProgressBar } = await import('../cli/progress.js');
    const io = captureIo();
    let now = 5_000;
    const bar = new ProgressBar(io, 'ingest', 2560, 'images', () => now);
    now += 1; // the bar is made when the first chunk arrives, a millisecond later
    bar.update(256);
    now += 200;
    bar.update(512);
    now += 800;
    bar.update(1280); // 1024 images in the second since the first update
    const lines = io.stderr.text.trim().split('\n');
    expect(lines[0]).toBe('ingest [##......................] 256/2560 images --/s ETA --');
    expect(lines.at(-1)).toBe('ingest [############............] 1280/2560 images 1024/s ETA 1s');
  });

  it('slow work shows time per unit, not 0/s (training at 1M images: an epoch every 19 s)', async () => {
    const { ProgressBar, formatRate } = await import('../cli/progress.js');
    expect([formatRate(null), formatRate(1024.4), formatRate(2.46), formatRate(1 / 19.4), formatRate(0)]).toEqual(['--/s', '1024/s', '2.5/s', '1 per 19.4s', '0/s']);
    const io = captureIo();
    let now = 0;
    const bar = new ProgressBar(io, 'train scn', 20, 'epochs', () => now);
    bar.update(1);
    now += 19_400;
    bar.update(2);
    expect(io.stderr.text.trim().split('\n').at(-1)).toBe('train scn [##......................] 2/20 epochs 1 per 19.4s ETA 5m49s');
  });
});
