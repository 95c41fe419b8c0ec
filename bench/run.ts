/**
 * `npm run bench [-- NAME ...]`: runs the benchmarks (all, in workflow order, or the ones named) on
 * ../shared/data/fer2013plus (FER_DATA to change) with a shared database at .tmp/bench.db (FER_BENCH_DB).
 * Each benchmark prints a markdown section to paste into docs/BENCHMARKS.md.
 */
const ORDER = ['ingest', 'embed', 'scn', 'train', 'review', 'demo'] as const;
/** Run only when named: long, and they build databases of their own. */
const ON_REQUEST = ['team', 'scale', 'yield', 'imports', 'top', 'quality'] as const;

// Benchmark names; `--flag value` and `--flag=value` pairs are left for the benchmarks (e.g. scale --sizes ...).
const names: string[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i]!.startsWith('--')) {
    if (!argv[i]!.includes('=')) i++;
  } else names.push(argv[i]!);
}
if (names.length === 0) names.push(...ORDER);
const KNOWN: readonly string[] = [...ORDER, ...ON_REQUEST];
for (const name of names) {
  if (!KNOWN.includes(name)) {
    console.error(`bench: unknown benchmark '${name}' (known: ${KNOWN.join(', ')})`);
    process.exit(2);
  }
}
for (const name of names) {
  const mod = (await import(`./${name}.js`)) as { main: () => Promise<void> };
  await mod.main();
}
