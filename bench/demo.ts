import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { run } from '../cli/run.js';
import { machine, mb, peakRss } from './common.js';

/**
 * `npm run demo` timed: the whole demo (ingest, embed, scn and ce, report with the sheet, export) on the bundled
 * faces in a fresh folder, in this process (worker threads included in the CPU time), and the comparison it prints.
 * The target is `npm ci && npm run demo` under 2 minutes on 2 cores; npm ci is not part of this figure.
 */
export async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fer-bench-demo-'));
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  try {
    const mem = peakRss();
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const code = await run(['demo'], { stdin: process.stdin, stdout: sink, stderr: quiet, env: {}, cwd: dir, onExit: () => () => undefined });
    const wall = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu);
    const peak = mem.stop();
    if (code !== 0) throw new Error(`demo exited with ${code}:\n${text}`);
    console.log(`## Demo (${new Date().toISOString().slice(0, 10)})`);
    console.log(`machine: ${machine()}`);
    console.log(`command: npm run build && npm run bench -- demo`);
    console.log(
      `npm run demo (in process): ${wall.toFixed(1)} s wall, ${((used.user + used.system) / 1e6).toFixed(1)} s CPU (all threads), peak RSS ${mb(peak)}`,
    );
    const embed = /^embed .*$/m.exec(text);
    if (embed) console.log(embed[0]);
    const from = text.indexOf('SCN against the baseline, same faces');
    const to = text.indexOf('\n\n', from);
    if (from >= 0) console.log('```\n' + text.slice(from, to < 0 ? undefined : to) + '\n```');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
