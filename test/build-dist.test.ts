import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distIsStale } from './setup/build-dist.js';
import { tempDir } from './helpers.js';

describe('tests never run a stale dist/ (vitest global setup)', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  const at = (p: string, s: number) => {
    mkdirSync(join(t.dir, p, '..'), { recursive: true });
    writeFileSync(join(t.dir, p), '');
    utimesSync(join(t.dir, p), s, s);
  };

  it('a missing build, or a source newer than the build, is stale; a build newer than every source is not', () => {
    at('src/review/session.ts', 1000);
    expect(distIsStale(t.dir)).toBe(true); // no dist/cli/main.js
    at('dist/cli/main.js', 2000);
    expect(distIsStale(t.dir)).toBe(false);
    at('cli/commands/review.ts', 3000); // edited after the build
    expect(distIsStale(t.dir)).toBe(true);
    at('dist/cli/main.js', 4000);
    expect(distIsStale(t.dir)).toBe(false);
    at('tsconfig.json', 5000);
    expect(distIsStale(t.dir)).toBe(true);
  });
});
