import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../src/paths.js';
import os from 'node:os';

export const DATA_DIR = resolve(process.env['FER_DATA'] ?? '../shared/data/fer2013plus');
export const BENCH_DB = resolve(process.env['FER_BENCH_DB'] ?? '.tmp/bench.db');
mkdirSync(dirname(BENCH_DB), { recursive: true });

/** One line describing the machine, for the header of each result. */
export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

/** Tracks peak resident memory by sampling every 50 ms. */
export function peakRss(): { stop: () => number } {
  let peak = process.memoryUsage.rss();
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  return {
    stop: () => {
      clearInterval(t);
      return Math.max(peak, process.memoryUsage.rss());
    },
  };
}

export const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** The q-quantile of xs, interpolated between the two nearest samples (NaN for none); median = quantile(xs, 0.5). */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

export const median = (xs: number[]): number => quantile(xs, 0.5);

/** The built CLI of this checkout. */
export const cli = (): string => join(packageRoot(), 'dist', 'cli', 'main.js');

/** Runs the CLI under /usr/bin/time: wall seconds, peak RSS, stdout. Throws with stderr on a non-zero exit. */
export function timed(args: string[], dir: string): { seconds: number; peakRss: number; stdout: string; stderr: string } {
  const timeFile = join(dir, 'time.txt');
  const t = performance.now();
  let stdout = '';
  let stderr = '';
  try {
    stdout = execFileSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, process.execPath, cli(), ...args], {
      maxBuffer: 1 << 30,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
  } catch (e) {
    const err = e as { stderr?: Buffer; status?: number };
    throw new Error(`fer-clean ${args.join(' ')}: exit ${err.status}: ${err.stderr?.toString().slice(-2000)}`);
  }
  const seconds = (performance.now() - t) / 1000;
  return { seconds, peakRss: Number(readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)) * 1024, stdout, stderr };
}
