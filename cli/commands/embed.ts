import { BACKBONES, DEFAULT_BACKBONE, resolveBackbone } from '../../src/features/backbones.js';
import { DEFAULT_BATCH, embedDataset, type EmbedResult } from '../../src/features/embed.js';
import { chooseEmbedBackend, EMBED_BACKENDS } from '../../src/features/engine.js';
import { DEFAULT_TTA, TTAS } from '../../src/features/tta.js';
import { resolveDataset } from '../../src/store/datasets.js';
import { out } from '../io.js';
import { ProgressBar } from '../progress.js';
import type { Command } from '../command.js';
import { choiceFlag, openExisting, parseIntFlag } from './shared.js';
import { IMPORT_USAGE, runEmbedImport } from './embed-import.js';
import { FerCleanError } from '../../src/errors.js';

const USAGE = `usage: fer-clean embed [options]

Computes a feature vector per image with a frozen pretrained face network whose weights ship in the
installed npm package (no download), and stores it in the database. Only missing embeddings are computed,
so an interrupted run picks up where it stopped.

  --backbone NAME    ${Object.keys(BACKBONES).join(' | ')} | a+b to concatenate (default ${DEFAULT_BACKBONE})
${Object.values(BACKBONES)
  .map((b) => `                       ${b.id.padEnd(9)}${b.dim}-d, ${b.description}`)
  .join('\n')}
  --tta T            ${TTAS.join(' | ')} (default ${DEFAULT_TTA}): flip stores the mean of each face's and its
                     mirror image's features (test-time augmentation, about 1.8x the CPU per face); each
                     kind is stored apart, and train picks one with its own --tta
  --backend B        ${EMBED_BACKENDS.join(' | ')} (default auto: onnxruntime when it loads, else
                     tfjs-node-gpu, tfjs-node, wasm, cpu; all give the same features)
  --batch N          images per batch and per database commit (default ${DEFAULT_BATCH})
  --workers N        worker threads, each with its own onnxruntime session or wasm/cpu backend (default: one
                     per core, at most 8; 0 runs in the main thread)
  --split NAME       only images of this split (default: all)
  --dataset NAME     dataset to embed (default: the only one in the database)
  --db PATH          database (default ./fer-clean.db, or FER_CLEAN_DB)
${IMPORT_USAGE}`;

export const embedCommand: Command = {
  name: 'embed',
  usage: USAGE,
  options: {
    backbone: { type: 'string' },
    tta: { type: 'string' },
    backend: { type: 'string' },
    batch: { type: 'string' },
    workers: { type: 'string' },
    dataset: { type: 'string' },
    split: { type: 'string' },
    from: { type: 'string' },
    paths: { type: 'string' },
    name: { type: 'string' },
    'skip-bad': { type: 'boolean' },
  },
  async run({ values }, io) {
    if (values['from'] !== undefined) return runEmbedImport(values, io);
    const importOnly = ['paths', 'name', 'skip-bad'].filter((k) => values[k] !== undefined);
    if (importOnly.length) throw new FerCleanError(`${importOnly.map((k) => `--${k}`).join(', ')} go${importOnly.length > 1 ? '' : 'es'} with --from FILE`);
    const backbone = resolveBackbone((values['backbone'] as string | undefined) ?? DEFAULT_BACKBONE);
    const backend = choiceFlag(values['backend'], '--backend', EMBED_BACKENDS);
    const tta = choiceFlag(values['tta'], '--tta', TTAS);
    const batch = parseIntFlag(values['batch'], '--batch');
    const workers = parseIntFlag(values['workers'], '--workers', 0);
    const db = openExisting(values, io);
    try {
      const dataset = resolveDataset(db, values['dataset'] as string | undefined);
      const choice = await chooseEmbedBackend(backend ?? 'auto');
      let bar: ProgressBar | undefined;
      let started = false;
      const result = await embedDataset(
        db,
        { datasetId: dataset.id, backbone: backbone.name, backend, batch, workers, split: values['split'] as string | undefined, tta },
        (done, total) => {
          if (!started) out(io, `backend: ${choice.name} (${choice.provider}): ${choice.reason}`);
          started = true;
          if (total === 0) return;
          bar ??= new ProgressBar(io, `embed ${backbone.name}`, total);
          bar.update(done);
        },
      );
      bar?.finish(result.computed);
      out(io, formatEmbedResult(result, backbone, dataset.name));
      if (result.unusable) {
        out(io, `  left out ${result.unusable} image${result.unusable > 1 ? 's' : ''} flagged at ingest (no face, or several faces): \`fer-clean report\` lists them`);
      }
      return 0;
    } finally {
      db.close();
    }
  },
};

/** The line that sums up an embed run (also the demo's). */
export function formatEmbedResult(result: EmbedResult, backbone: { name: string; dim: number }, dataset: string): string {
  const rate = result.computed > 0 ? `, ${(result.computed / result.seconds).toFixed(0)} images/s` : '';
  return (
    `embed ${backbone.name} (${backbone.dim}-d${result.tta === 'flip' ? ', flip TTA' : ''}) on dataset '${dataset}': computed ${result.computed}, ` +
    `already stored ${result.skipped}, in ${result.seconds.toFixed(1)}s${rate} ` +
    `[${result.backend.name}, ${result.workers ? `${result.workers} worker threads` : 'main thread'}]`
  );
}
