import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The folder holding fer-clean's package.json, from source (vitest) or from dist/ alike. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return (cached = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error('fer-clean: cannot find the package root (package.json beside migrations/)');
    dir = up;
  }
}

export const migrationsDir = (): string => join(packageRoot(), 'migrations');
export const fixturesDir = (): string => join(packageRoot(), 'fixtures');
