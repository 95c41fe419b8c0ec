import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { BENCH_DB, machine, median, quantile } from './common.js';
import { buildDatabase } from './review.js';
import { runTeam } from './team-driver.js';

/**
 * `npm run bench -- team`: 8 review sessions in real pseudo-terminals on one database (the 28,558 shared train
 * faces and a synthetic run with ~10,000 proposals, as in the review benchmark), each making 300 decision steps:
 * one key every 20 ms at most (timed from the key to the next face drawn), and every 10th step 4 keys in one
 * write (a burst), while another process runs `fer-clean export` in a loop. BENCH_TEAM_SESSIONS, BENCH_TEAM_STEPS
 * change the size; BENCH_TEAM_EXPORT=0 leaves the export loop out (to see what it costs the sessions).
 */
export async function main(): Promise<void> {
  const sessions = Number(process.env['BENCH_TEAM_SESSIONS'] ?? 8);
  const steps = Number(process.env['BENCH_TEAM_STEPS'] ?? 300);
  const exporting = process.env['BENCH_TEAM_EXPORT'] !== '0';
  const dbPath = resolve(dirname(BENCH_DB), 'bench-team.db');
  const built = buildDatabase(dbPath);
  const work = mkdtempSync(resolve(dirname(BENCH_DB), 'team-'));
  const load0 = os.loadavg()[0]!;
  try {
    const r = await runTeam({ dbPath, workDir: work, sessions, steps, paceMs: 20, burstEvery: 10, burst: 4, exportMeanwhile: exporting });
    console.log(`## Team load (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`);
    console.log(`machine: ${machine()}; load average (1 min) ${load0.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end`);
    console.log(`command: npm run build && ${exporting ? '' : 'BENCH_TEAM_EXPORT=0 '}npm run bench -- team`);
    console.log(
      `database: ${built.images} train images, synthetic run; ${sessions} sessions x ${steps} steps (single keys every >= 20 ms, every 10th step a burst of 4 keys in one write), ${exporting ? '`fer-clean export` in a loop meanwhile' : 'no export loop'}; ${r.wallS.toFixed(0)} s in all`,
    );
    console.log('');
    if (process.env['BENCH_CLI']) console.log(`CLI: ${process.env['BENCH_CLI']}`);
    console.log('| session | keys sent | decisions stored | of which in bursts (sent) | single keys without a next face | key to next face, median | p90 | CPU per key | exit |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const s of r.sessions) {
      const p90 = quantile(s.timed, 0.9);
      console.log(
        `| ${s.annotator} | ${s.keysSent} | ${s.handled} | ${s.burstKeys} | ${s.noFace} | ${median(s.timed).toFixed(0)} ms | ${p90.toFixed(0)} ms | ${s.cpuMsPerKey.toFixed(1)} ms | ${s.exitCode} |`,
      );
    }
    console.log('');
    console.log(
      `- keys handled: ${r.rows} of ${r.keysSent} sent (${r.sessions.filter((s) => s.handled === s.keysSent).length} of ${sessions} sessions handled every key); images decided twice: ${r.decidedTwice}; exports: ${r.exports.runs} runs, ${r.exports.failures.length} failed${r.exports.failures.length ? ` (${r.exports.failures.slice(0, 3).join('; ')})` : ''}`,
    );
    console.log(`- median of the sessions' medians: ${median(r.sessions.map((s) => median(s.timed))).toFixed(0)} ms`);
    console.log(`- CPU per key (review process, first face to last key, / keys sent), median over sessions: ${median(r.sessions.map((s) => s.cpuMsPerKey)).toFixed(1)} ms`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
