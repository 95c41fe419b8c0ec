/**
 * `npm run bench [-- NAME ...]`: runs the benchmarks (all, in workflow order, or the ones named) on
 * ../shared/data/fer2013plus (FER_DATA to change) with a shared database at .tmp/bench.db (FER_BENCH_DB).
 * Each benchmark prints a markdown section to paste into docs/BENCHMARKS.md.
 */
const ORDER = ['ingest', 'embed', 'scn', 'review', 'demo'] as const;

const names = process.argv.slice(2).length ? process.argv.slice(2) : [...ORDER];
for (const name of names) {
  if (!(ORDER as readonly string[]).includes(name)) {
    console.error(`bench: unknown benchmark '${name}' (known: ${ORDER.join(', ')})`);
    process.exit(2);
  }
}
for (const name of names) {
  const mod = (await import(`./${name}.js`)) as { main: () => Promise<void> };
  await mod.main();
}
