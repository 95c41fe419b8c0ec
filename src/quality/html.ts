/**
 * `report --html`: one self-contained page for a person to look at (inline styles, faces as data: URIs, nothing
 * fetched): the run's summary, the given -> proposed confusion matrix, the importance histogram, the first faces of
 * the review queue (the contact sheet's sections, src/review/sheet.ts), the duplicate groups side by side and the
 * flagged images. Frames follow the contact sheet: green right / agree, red wrong / disagree, grey unknown.
 */
import sharp from 'sharp';
import { decodeRgb } from '../features/decode.js';
import type { FaceBox } from '../features/facebox.js';
import type { DB } from '../store/db.js';
import { imageFile } from '../store/datasets.js';
import type { ResolvedRun } from '../store/runs.js';
import type { RunReport } from '../scn/metrics.js';
import { formatReportSummary } from '../scn/report.js';
import type { SheetSection } from '../review/report/sheet.js';
import type { DatasetLabelStats } from '../ingest/stats.js';
import { boxOfRow } from '../features/facebox.js';
import { duplicateGroups, flaggedImages, lastQualityCheck, QUALITY_FLAGS, type DuplicateGroup, type FlaggedImage, type QualityFlag } from './index.js';

export interface HtmlReportInput {
  run: ResolvedRun;
  report: RunReport;
  labels: DatasetLabelStats;
  /** The contact sheet's sections (sheetSections): the first faces of the review queue, then the lowest importance. */
  sheet: SheetSection[];
  /** Duplicate groups shown (default 30): labels that disagree first, then groups across splits, then the rest. */
  maxGroups?: number;
  /** Flagged images shown (default 60). */
  maxFlagged?: number;
}

/** Face tile side in the page, pixels. */
const TILE = 96;
const COLOURS = { right: '#2e9d3e', wrong: '#d22f27', unknown: '#9a9a9a' } as const;
type Mark = keyof typeof COLOURS;

const esc = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
const int = (n: number): string => n.toLocaleString('en-US');

/** A face as a JPEG data: URI of TILE x TILE; a face that cannot be read is a grey tile saying so (the page is still written). */
async function faceUri(file: string, box: FaceBox | null): Promise<string> {
  try {
    const rgb = await decodeRgb(file, box);
    const png = await sharp(Buffer.from(rgb.data.buffer, rgb.data.byteOffset, rgb.data.byteLength), { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
      .resize(TILE, TILE, { fit: 'contain', background: { r: 0, g: 0, b: 0 }, kernel: 'lanczos3' })
      .jpeg({ quality: 88 })
      .toBuffer();
    return `data:image/jpeg;base64,${png.toString('base64')}`;
  } catch {
    return '';
  }
}

async function tile(file: string, box: FaceBox | null, lines: string[], mark: Mark): Promise<string> {
  const uri = await faceUri(file, box);
  const img = uri ? `<img src="${uri}" width="${TILE}" height="${TILE}" alt="${esc(lines[0] ?? '')}">` : `<div class="missing">cannot read</div>`;
  return `<figure class="face" style="border-color:${COLOURS[mark]}">${img}<figcaption>${lines.map(esc).join('<br>')}</figcaption></figure>`;
}

const STYLE = `
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;margin:24px;color:#111;background:#fff;max-width:1400px}
h1{font-size:22px;margin:0 0 8px} h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
p.legend{color:#444;font-size:13px;margin:2px 0 8px} ul.summary{font-size:14px;line-height:1.5;margin:4px 0;padding-left:20px}
.faces{display:flex;flex-wrap:wrap;gap:10px}
figure.face{margin:0;border:3px solid #9a9a9a;width:${TILE + 28}px;background:#fff}
figure.face img{display:block;width:${TILE}px;height:${TILE}px;margin:0 auto}
figure.face figcaption{font-size:11px;line-height:1.3;padding:3px;overflow-wrap:anywhere}
.missing{width:${TILE}px;height:${TILE}px;margin:0 auto;background:#eee;font-size:11px;display:flex;align-items:center;justify-content:center}
.group{display:flex;gap:8px;align-items:flex-start;border:1px solid #e3e3e3;border-radius:4px;padding:6px;margin:0 0 8px}
.group .info{flex:0 0 160px;font-size:12px;line-height:1.4}
table.cm{border-collapse:collapse;font-size:12px} table.cm td,table.cm th{border:1px solid #ddd;padding:3px 6px;text-align:right}
table.cm th{background:#f4f4f4} table.cm td.diag{color:#777}
.hist{display:grid;grid-template-columns:70px 1fr 170px;gap:3px 8px;font-size:12px;align-items:center;max-width:760px}
.bar{display:flex;height:14px} .bar span{display:block;height:14px}
`;

/** The confusion matrix of given (rows) -> final proposal (columns; no proposal = the given label) over the run's images. */
function confusionTable(db: DB, run: ResolvedRun): string {
  const classes = run.dataset.taxonomy;
  const counts = db
    .prepare(`SELECT given_label AS g, coalesce(proposed_label, given_label) AS p, count(*) AS n FROM run_images WHERE run_id = ? GROUP BY 1, 2`)
    .all(run.id) as { g: string; p: string; n: number }[];
  const cell = new Map(counts.map((c) => [`${c.g}\u0000${c.p}`, c.n]));
  const max = Math.max(1, ...counts.filter((c) => c.g !== c.p).map((c) => c.n));
  const head = `<tr><th>given \\ proposed</th>${classes.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = classes
    .map((g) => {
      const tds = classes.map((p) => {
        const n = cell.get(`${g}\u0000${p}`) ?? 0;
        if (g === p) return `<td class="diag" title="no proposal">${int(n)}</td>`;
        const a = n ? 0.12 + 0.6 * (n / max) : 0;
        return `<td style="background:rgba(210,47,39,${a.toFixed(2)})">${n ? int(n) : ''}</td>`;
      });
      return `<tr><th>${esc(g)}</th>${tds.join('')}</tr>`;
    })
    .join('');
  return `<table class="cm">${head}${body}</table>`;
}

function histogram(r: RunReport): string {
  const h = r.importance_histogram;
  if (!h) return '<p class="legend">(this run has no importance: not an SCN run)</p>';
  const totals = h.clean.map((c, i) => c + h.noisy[i]! + h.unscored[i]!);
  const max = Math.max(1, ...totals);
  const pctW = (n: number): string => `${((100 * n) / max).toFixed(2)}%`;
  const rows = totals.map((t, i) => {
    const bar =
      `<span style="width:${pctW(h.clean[i]!)};background:${COLOURS.right}"></span>` +
      `<span style="width:${pctW(h.noisy[i]!)};background:${COLOURS.wrong}"></span>` +
      `<span style="width:${pctW(h.unscored[i]!)};background:${COLOURS.unknown}"></span>`;
    return `<div>${h.edges[i]!.toFixed(1)}-${h.edges[i + 1]!.toFixed(1)}</div><div class="bar">${bar}</div><div>${int(t)}${r.detection ? ` (${int(h.noisy[i]!)} wrong)` : ''}</div>`;
  });
  return `<div class="hist">${rows.join('')}</div>`;
}

async function groupBlock(run: ResolvedRun, g: DuplicateGroup, boxOf: (id: number) => FaceBox | null): Promise<string> {
  const mark: Mark = g.labels_disagree ? 'wrong' : 'right';
  const faces = await Promise.all(g.images.slice(0, 12).map((m) => tile(imageFile(run.dataset.root, m.path), boxOf(m.image_id), [m.path, `${m.split}: ${m.label ?? '-'}`], mark)));
  const more = g.images.length > 12 ? `<p class="legend">... and ${g.images.length - 12} more</p>` : '';
  const info =
    `<b>${g.kind}</b>, ${g.images.length} images<br>cosine &ge; ${g.similarity.toFixed(3)}` +
    (g.pixel_similarity === null ? '' : `<br>pixels &ge; ${g.pixel_similarity.toFixed(3)}`) +
    `<br>splits: ${g.splits.map(esc).join(', ')}${g.splits.length > 1 ? ' <b>(leak)</b>' : ''}` +
    `<br>${g.labels_disagree ? '<b style="color:#d22f27">labels disagree</b>' : 'labels agree'}`;
  return `<div class="group" data-kind="${g.kind}"><div class="info">${info}</div><div class="faces">${faces.join('')}${more}</div></div>`;
}

async function flaggedBlock(run: ResolvedRun, f: FlaggedImage, box: FaceBox | null): Promise<string> {
  const lines = [f.path, `${f.split}: ${f.label ?? '-'}`, ...f.reasons.map((r) =>
      r.score === null ? `${r.flag} (${r.source})` : r.flag === 'non-face' ? `non-face: ${r.detail.split(':')[0]}` : `${r.flag} ${r.score.toFixed(3)}`,
    ),
  ];
  return tile(imageFile(run.dataset.root, f.path), box, lines, 'unknown');
}

/** Builds the page. Faces are read from the dataset's files; one that cannot be read shows as a grey tile. */
export async function renderHtmlReport(db: DB, input: HtmlReportInput): Promise<string> {
  const { run, report } = input;
  const ds = run.dataset;
  const boxStmt = db.prepare(`SELECT crop_x, crop_y, crop_w, crop_h FROM images WHERE id = ?`);
  const boxOf = (id: number): FaceBox | null => {
    const r = boxStmt.get(id) as Parameters<typeof boxOfRow>[0] | undefined;
    return r ? boxOfRow(r) : null;
  };
  const check = lastQualityCheck(db, ds.id);
  const all = check ? duplicateGroups(db, ds.id) : [];
  const flagged = flaggedImages(db, ds.id);
  const summary = [...formatReportSummary(report)];
  const nonExpr = Object.values(input.labels.non_expression).reduce((a, b) => a + b, 0);
  if (nonExpr) summary.push(`not an expression (kept, not trained on): ${int(nonExpr)} of ${int(input.labels.images)} images`);
  if (check) {
    const pairs = (g: DuplicateGroup): number => (g.images.length * (g.images.length - 1)) / 2;
    const leak = all.filter((g) => g.splits.length > 1);
    const conflicting = all.filter((g) => g.labels_disagree);
    summary.push(
      `duplicates (checked ${check.checked_at}): ${int(all.filter((g) => g.kind === 'exact').length)} exact and ${int(all.filter((g) => g.kind === 'near').length)} near groups, ` +
        `${int(all.reduce((s, g) => s + pairs(g), 0))} pairs; ${int(leak.length)} groups across splits, ${int(conflicting.length)} whose labels disagree`,
    );
  } else summary.push('duplicates and quality flags: not checked yet (run `fer-clean quality`)');
  summary.push(`flagged images: ${int(flagged.length)}`);

  const sheetHtml: string[] = [];
  for (const s of input.sheet) {
    const faces = await Promise.all(s.faces.map((f) => tile(f.file, f.box, f.lines, f.mark)));
    sheetHtml.push(
      `<h2>${esc(s.title)}</h2>${s.legend ? `<p class="legend">${esc(s.legend)}</p>` : ''}<div class="faces">${faces.join('') || '<p class="legend">(none)</p>'}</div>`,
    );
  }
  const shown = [...all]
    .sort((a, b) => Number(b.labels_disagree) - Number(a.labels_disagree) || b.splits.length - a.splits.length || b.images.length - a.images.length)
    .slice(0, input.maxGroups ?? 30);
  const groupsHtml = await Promise.all(shown.map((g) => groupBlock(run, g, boxOf)));
  // quality findings first (non-face, outlier, ...), then ingest and label flags
  const rank = (f: FlaggedImage): number => {
    const q = f.reasons.find((r) => r.source === 'quality');
    return q ? QUALITY_FLAGS.indexOf(q.flag as QualityFlag) : QUALITY_FLAGS.length;
  };
  const flaggedShown = [...flagged].sort((a, b) => rank(a) - rank(b)).slice(0, input.maxFlagged ?? 60);
  const flaggedHtml = await Promise.all(flaggedShown.map((f) => flaggedBlock(run, f, boxOf(f.image_id))));

  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fer-clean report: run ${run.id} on ${esc(ds.name)}</title><style>${STYLE}</style></head>
<body>
<h1>fer-clean report: run ${run.id} (${esc(run.method)}) on dataset '${esc(ds.name)}'</h1>
<section id="summary"><h2>Summary</h2><ul class="summary">${summary.map((l) => `<li>${esc(l)}</li>`).join('')}</ul></section>
<section id="confusion"><h2>Given &rarr; proposed</h2><p class="legend">rows: the given label; columns: the run's proposal (the diagonal, grey: no proposal); red: more proposals</p>${confusionTable(db, run)}</section>
<section id="importance"><h2>Importance of the training images (final alpha)</h2><p class="legend">green: label right, red: label wrong (against the reference or injected flips), grey: not scored</p>${histogram(report)}</section>
<section id="queue">${sheetHtml.join('\n')}</section>
<section id="duplicates"><h2>Duplicate groups (${int(shown.length)} of ${int(all.length)})</h2><p class="legend">side by side: labels that disagree first (red frames), then groups across splits (leakage), then the largest; green frames: the labels agree</p>${groupsHtml.join('\n') || '<p class="legend">(none)</p>'}</section>
<section id="flagged"><h2>Flagged images (${int(flaggedShown.length)} of ${int(flagged.length)})</h2><p class="legend">each image once, with all its reasons: outliers (distance to the nearest class), non-faces, dark, light, blurry, low information, and ingest flags</p><div class="faces">${flaggedHtml.join('') || '<p class="legend">(none)</p>'}</div></section>
</body></html>
`;
}
