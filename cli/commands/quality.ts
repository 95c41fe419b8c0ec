import { resolveDataset } from '../../src/store/datasets.js';
import { checkQuality, DEFAULT_QUALITY, duplicateGroups, type QualitySummary } from '../../src/quality/index.js';
import { err, out } from '../io.js';
import type { Command } from '../command.js';
import { ProgressBar } from '../progress.js';
import { openExisting, parseNumberFlag } from './shared.js';

const USAGE = `usage: fer-clean quality [--dataset NAME] [options]

Looks at every image of a dataset for what spoils it besides wrong labels, and stores what it finds (replacing the
previous check): duplicate groups ('exact' = the same bytes, 'near' = a re-encoded, brightened, shifted or re-cropped
copy), counted across splits (leakage) and where their labels disagree; images far from every class in embedding
space (outlier); images that are not faces (flat, noise, gradient, text-like); and dark, light, blurry and
low-information faces. Nothing is deleted: \`report\` lists the findings (--json, --html), \`export --dedupe drop\`
leaves duplicates out. Near-duplicates and outliers need the embeddings (\`fer-clean embed\`).

  --dataset NAME     which dataset (needed when the database holds several)
  --backbone NAME    embeddings to use (default faceexpr)
  --candidate COS    embedding cosine at which a pair is looked at pixel by pixel (default ${DEFAULT_QUALITY.candidate})
  --pixel-match R    aligned pixel correlation that makes it a near-duplicate (default ${DEFAULT_QUALITY.pixelMatch})
  --near-cosine COS  embedding cosine that makes a near-duplicate on its own (default ${DEFAULT_QUALITY.nearCosine})
  --outlier D        distance to the nearest class mean (1 - cosine) above which an image is an outlier (default ${DEFAULT_QUALITY.outlier})
  --json             print the summary as JSON
  --db PATH          database (default ./fer-clean.db, or FER_CLEAN_DB)
Thresholds and what they were calibrated on: docs/QUALITY.md.`;

export const qualityCommand: Command = {
  name: 'quality',
  usage: USAGE,
  options: {
    dataset: { type: 'string' },
    backbone: { type: 'string' },
    candidate: { type: 'string' },
    'pixel-match': { type: 'string' },
    'near-cosine': { type: 'string' },
    outlier: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values }, io) {
    const db = openExisting(values, io);
    try {
      const dataset = resolveDataset(db, values['dataset'] as string | undefined);
      let bar: ProgressBar | undefined;
      const s = await checkQuality(
        db,
        {
          datasetId: dataset.id,
          backbone: values['backbone'] as string | undefined,
          candidate: parseNumberFlag(values['candidate'], '--candidate'),
          pixelMatch: parseNumberFlag(values['pixel-match'], '--pixel-match'),
          nearCosine: parseNumberFlag(values['near-cosine'], '--near-cosine'),
          outlier: parseNumberFlag(values['outlier'], '--outlier'),
        },
        (done, total) => {
          if (total === 0) return;
          bar ??= new ProgressBar(io, 'quality: images', total);
          bar.update(done);
        },
      );
      bar?.finish();
      if (values['json']) out(io, JSON.stringify(s, null, 2));
      else for (const line of formatQualitySummary(s, dataset.name)) out(io, line);
      if (s.backbone === null) err(io, `no embeddings stored: near-duplicates and outliers not looked for (run \`fer-clean embed --dataset ${dataset.name}\`)`);
      const worst = duplicateGroups(db, dataset.id, { conflicting: true }).slice(0, 5);
      if (!values['json'] && worst.length) {
        out(io, '');
        out(io, 'largest groups whose labels disagree:');
        for (const g of worst) out(io, `  ${g.kind} (cos >= ${g.similarity.toFixed(3)}): ${g.images.map((m) => `${m.path} [${m.split}, ${m.label}]`).join(', ')}`);
      }
      return 0;
    } finally {
      db.close();
    }
  },
};

const int = (n: number): string => n.toLocaleString('en-US');

/** The lines `quality` prints. */
export function formatQualitySummary(s: QualitySummary, dataset: string): string[] {
  const flags = Object.entries(s.flags).map(([k, v]) => `${k} ${int(v)}`).join(', ') || 'none';
  return [
    `quality of dataset '${dataset}' (${int(s.images)} images, ${s.seconds.total.toFixed(1)} s: pixels ${s.seconds.pixels.toFixed(1)} s, pairs ${s.seconds.pairs.toFixed(1)} s)`,
    `duplicate groups: ${int(s.groups.exact)} exact, ${int(s.groups.near)} near; ${int(s.pairs)} pairs, ${int(s.redundant_images)} images beyond the first of their group`,
    `across splits (leakage): ${int(s.pairs_across_splits)} pairs in ${int(s.groups_across_splits)} groups`,
    `labels disagree: ${int(s.pairs_conflicting)} pairs in ${int(s.groups_conflicting)} groups`,
    `flagged images: ${flags}`,
  ];
}
