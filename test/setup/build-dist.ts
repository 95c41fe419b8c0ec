/**
 * Vitest global setup: the tests that run the real CLI in a process of its own (the PTY review tests, kill -9,
 * train interrupted, the team test) run dist/cli/main.js, which `tsc --noEmit` does not write. A build older than
 * any source is rebuilt here, once, before any test runs, so a stale dist/ can never pass for the sources.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Newest modification time (ms) of the files under `dirs` (recursively) and of `files`; 0 when there are none. */
export function newestMtime(root: string, dirs: string[], files: string[] = []): number {
  let newest = 0;
  const visit = (p: string): void => {
    const st = statSync(p);
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const d of dirs) if (existsSync(join(root, d))) visit(join(root, d));
  for (const f of files) if (existsSync(join(root, f))) newest = Math.max(newest, statSync(join(root, f)).mtimeMs);
  return newest;
}

/** Whether dist/ is missing or older than a source it is built from (src, cli, bench, tsconfig.json, package.json). */
export function distIsStale(root: string): boolean {
  const built = join(root, 'dist', 'cli', 'main.js');
  if (!existsSync(built)) return true;
  return newestMtime(root, ['src', 'cli', 'bench'], ['tsconfig.json', 'package.json']) > statSync(built).mtimeMs;
}

export default function setup(): void {
  const root = process.cwd();
  if (!distIsStale(root)) return;
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
}
