// The install must print no npm warning and must never make onnxruntime-node's postinstall
// download its CUDA libraries (the npm registry is the only network an install may need).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the npm of this machine in the project root with an empty user config, so that only the
 *  project's .npmrc (and npm's defaults) are read. */
function npm(args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'fer-npmrc-'));
  const userconfig = join(dir, 'npmrc');
  writeFileSync(userconfig, '');
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.toLowerCase().startsWith('npm_config_')) delete env[k];
  return spawnSync('npm', [...args, `--userconfig=${userconfig}`], { cwd: root, env, encoding: 'utf8' });
}

describe('npm install setup', () => {
  it('the project .npmrc holds only settings npm knows (no "Unknown project config" warning)', () => {
    const r = npm(['config', 'get', 'node-options']);
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/warn/i);
    expect(r.stdout).toContain('ONNXRUNTIME_NODE_INSTALL');
  });

  it("onnxruntime-node's postinstall, run with the NODE_OPTIONS npm gives it, skips every download", () => {
    const nodeOptions = npm(['config', 'get', 'node-options']).stdout.trim();
    const require = createRequire(import.meta.url);
    const ortDir = dirname(require.resolve('onnxruntime-node/package.json'));
    const script = JSON.parse(readFileSync(join(ortDir, 'package.json'), 'utf8')).scripts.postinstall as string;
    expect(script).toBe('node ./script/install');
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, NODE_OPTIONS: nodeOptions };
    // Any download attempt goes to a closed port and fails at once instead of fetching from NuGet.
    env.GLOBAL_AGENT_HTTPS_PROXY = 'http://127.0.0.1:9';
    env.HTTPS_PROXY = 'http://127.0.0.1:9';
    const r = spawnSync(process.execPath, ['./script/install'], { cwd: ortDir, env, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(/Downloading/);
    expect(r.status).toBe(0);
  });

  it('without that NODE_OPTIONS the same postinstall would try to download (the check above can fail)', () => {
    const require = createRequire(import.meta.url);
    const ortDir = dirname(require.resolve('onnxruntime-node/package.json'));
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9' };
    const r = spawnSync(process.execPath, ['./script/install'], { cwd: ortDir, env, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).not.toBe(0);
  });

  it('package.json allowScripts runs better-sqlite3 (its prebuilt binary) and never onnxruntime-node', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    expect(pkg.allowScripts['better-sqlite3']).toBe(true);
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
  });

  it('every installed package with an install script has an allowScripts entry (npm >= 11 warns otherwise)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    const uncovered: string[] = [];
    const walk = (dir: string): void => {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        return;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        if (name.startsWith('@')) {
          walk(join(dir, name));
          continue;
        }
        const at = join(dir, name);
        let manifest: { name?: string; scripts?: Record<string, string>; gypfile?: boolean };
        try {
          manifest = JSON.parse(readFileSync(join(at, 'package.json'), 'utf8'));
        } catch {
          continue;
        }
        const s = manifest.scripts ?? {};
        // npm's default install script for a package with a binding.gyp and none of its own: node-gyp rebuild
        const gyp = !s['install'] && !s['preinstall'] && manifest.gypfile !== false && existsSync(join(at, 'binding.gyp'));
        if ((s['preinstall'] || s['install'] || s['postinstall'] || gyp) && !(manifest.name! in pkg.allowScripts)) uncovered.push(manifest.name!);
        walk(join(at, 'node_modules'));
      }
    };
    walk(join(root, 'node_modules'));
    expect(uncovered).toEqual([]);
  });
});
