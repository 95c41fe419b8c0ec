import { join, relative, resolve } from 'node:path';
import { fixturesDir, packageRoot } from '../../src/paths.js';
import { openStore, resolveDbPath } from '../../src/store/db.js';
import { out, type Io } from '../io.js';
import type { Command } from '../run.js';

const USAGE = `usage: fer-clean demo [--db PATH] [--out FILE] [--backend auto|tensorflow|wasm|cpu]

Runs the whole loop on the bundled fixtures (296 real FER2013 faces with their original labels and FER+ votes):
ingest -> embed -> train (SCN) -> report -> export, then prints the review command to try.
  --db PATH     database for the demo (default ./fer-clean-demo.db; re-running reuses what is there)
  --out FILE    where the corrected labels go (default ./fer-clean-demo-labels.csv)
  --backend B   TensorFlow.js backend (default auto)`;

export const demoCommand: Command = {
  name: 'demo',
  usage: USAGE,
  options: { out: { type: 'string' }, backend: { type: 'string' } },
  async run({ values }, io) {
    const { run } = await import('../run.js');
    const db = resolve(io.cwd, resolveDbPath((values['db'] as string | undefined) ?? 'fer-clean-demo.db', {}));
    const csv = resolve(io.cwd, (values['out'] as string | undefined) ?? 'fer-clean-demo-labels.csv');
    const backend = (values['backend'] as string | undefined) ?? 'auto';
    const source = resolve(fixturesDir(), 'ferplus', 'labels.csv');
    const steps: [string, string[]][] = [
      ['ingest the fixtures (original FER2013 labels; FER+ majority as the reference)', ['ingest', source, '--name', 'demo']],
      ['embed every face with the default backbone', ['embed', '--backend', backend]],
      ['train a Self-Cure Network on the original (noisy) labels', ['train', '--backend', backend]],
      ['report: accuracy, noise detection against FER+, importance', ['report']],
      ['export the labels (nothing reviewed yet: final = original)', ['export', csv]],
    ];
    for (const [i, [title, argv]] of steps.entries()) {
      out(io, `\n== ${i + 1}/${steps.length} ${title}\n$ fer-clean ${argv.map(quote).join(' ')}`);
      const code = await run([...argv, '--db', db], io);
      if (code !== 0) return code;
    }
    const store = openStore(db, { mustExist: true });
    const last = store.prepare(`SELECT max(id) AS id FROM runs WHERE status = 'done'`).get() as { id: number | null };
    store.close();
    printNext(io, db, last.id, csv);
    return 0;
  },
};

const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function printNext(io: Io, db: string, runId: number | null, csv: string): void {
  // `fer-clean` itself when `npm link` put it on the PATH; the compiled entry point works from anywhere
  const rel = (p: string): string => {
    const r = relative(io.cwd, p);
    return quote(r && !r.startsWith('..') ? r : p);
  };
  const cli = `node ${rel(join(packageRoot(), 'dist', 'cli', 'main.js'))}`;
  out(io, `\nDone. Review the proposals (a terminal of at least 80x24):`);
  out(io, `  ${cli} review --db ${rel(db)}${runId !== null ? ` --run ${runId}` : ''} --annotator "$USER"`);
  out(io, `then export the corrected labels:`);
  out(io, `  ${cli} export ${rel(csv)} --db ${rel(db)}`);
}
