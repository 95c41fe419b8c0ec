/**
 * Contact sheets of a run: a PNG with the first faces of the review order (given -> proposed, margin) and, in a
 * second section, the training faces of lowest importance. Faces are cut with the stored face box (decodeRgb), the
 * text is SVG composited by sharp (librsvg in sharp's libvips).
 */
import { imageFile } from '../../store/datasets.js';
import sharp, { type OverlayOptions } from 'sharp';
import { FerCleanError } from '../../errors.js';
import { boxOfRow, type FaceBox } from '../../features/facebox.js';
import type { DB } from '../../store/db.js';
import { loadDetail } from '../domain/proposals.js';
import { nextItems, type QueueOrder } from '../verbs.js';
import type { ResolvedRun } from '../../store/runs.js';

/** One face on a sheet and its caption. */
export interface SheetFace {
  /** Absolute path of the image file. */
  file: string;
  box: FaceBox | null;
  /** Caption lines under the face (short: about 18 characters fit). */
  lines: string[];
  /** Colour of the frame: 'right' (green), 'wrong' (red) or 'unknown' (grey), e.g. the proposal against a reference. */
  mark: 'right' | 'wrong' | 'unknown';
}

export interface SheetSection {
  title: string;
  /** A line under the title, e.g. what the frame colours mean. */
  legend?: string;
  faces: SheetFace[];
}

export interface SheetOptions {
  /** Items of the review order on the sheet (default 40). */
  count?: number;
  /** Lowest-importance faces in the second section (default: `count`; 0 leaves the section out). */
  lowest?: number;
  /** The review order, as `fer-clean review --order` (default: the learning order, by estimate). */
  order?: QueueOrder;
}

const fix = (x: number, d: number): string => x.toFixed(d);

/**
 * What a run's sheet shows: the first `count` items of the review order, then the `lowest` training faces of
 * lowest importance. When the dataset has reference labels (e.g. the FER+ majority) each caption says it, and the
 * frame is green when the proposal (or, for the lowest-importance faces, the given label) agrees with it.
 */
export function sheetSections(db: DB, run: ResolvedRun, opts: SheetOptions = {}): SheetSection[] {
  const count = opts.count ?? 40;
  const lowest = opts.lowest ?? count;
  const refOf = db.prepare(`SELECT reference FROM labels WHERE image_id = ?`);
  // the review session's own queue: undecided proposals in its order, each with its estimate
  const { order, items: queue } = nextItems(db, { runId: run.id, limit: Math.max(1, count), order: opts.order });
  const first: SheetFace[] = queue.slice(0, count).map((q, k) => {
    const d = loadDetail(db, run, q.imageId);
    const ref = (refOf.get(q.imageId) as { reference: string | null } | undefined)?.reference ?? null;
    return {
      file: d.file,
      box: d.box,
      lines: [
        // an exploration draw of the learning order is placed at random, not by its estimate
        q.explore ? `#${k + 1} est ${fix(q.estimate, 2)} random` : `#${k + 1} estimate ${fix(q.estimate, 2)}`,
        `${q.given} ->`,
        q.proposed,
        q.margin === null ? 'no margin' : `margin ${fix(q.margin, 3)}`,
        ...(ref === null ? [] : [`ref: ${ref}`]),
      ],
      mark: ref === null ? 'unknown' : ref === q.proposed ? 'right' : 'wrong',
    };
  });
  const sections: SheetSection[] = [
    {
      title: `Run ${run.id} (${run.method}): the first ${first.length} undecided proposals in review order '${order}' (given -> proposed; estimate = P(accept))`,
      faces: first,
    },
  ];
  const withRef = first.some((f) => f.mark !== 'unknown');
  if (lowest > 0) {
    const rows = db
      .prepare(
        `SELECT ri.image_id, ri.given_label, ri.proposed_label, ri.importance, l.reference, i.path, i.crop_x, i.crop_y, i.crop_w, i.crop_h
         FROM run_images ri JOIN images i ON i.id = ri.image_id LEFT JOIN labels l ON l.image_id = ri.image_id
         WHERE ri.run_id = ? AND ri.in_training = 1 AND ri.importance IS NOT NULL
         ORDER BY ri.importance ASC, ri.image_id LIMIT ?`,
      )
      .all(run.id, lowest) as ({
      image_id: number;
      given_label: string;
      proposed_label: string | null;
      importance: number;
      reference: string | null;
      path: string;
    } & Parameters<typeof boxOfRow>[0])[];
    if (rows.length) {
      sections.push({
        title:
          `The ${rows.length} training faces of lowest importance (alpha), lowest first`,
        ...(rows.some((r) => r.reference !== null)
          ? { legend: 'frame green: the given label agrees with the reference label (ref), red: it does not, grey: no reference' }
          : {}),
        faces: rows.map((r) => ({
          file: imageFile(run.dataset.root, r.path),
          box: boxOfRow(r),
          lines: [
            `alpha ${fix(r.importance, 2)}`,
            `given ${r.given_label}`,
            r.proposed_label ? `-> ${r.proposed_label}` : 'no proposal',
            ...(r.reference === null ? [] : [`ref: ${r.reference}`]),
          ],
          mark: r.reference === null ? 'unknown' : r.reference === r.given_label ? 'right' : 'wrong',
        })),
      });
    }
  }
  const legend: string[] = [];
  if (withRef) legend.push('frame green: the proposal agrees with the reference label (ref), red: it does not, grey: no reference');
  if (queue.some((q) => q.explore)) legend.push("random: placed by the learning order's exploration draw, not by its estimate");
  if (legend.length) sections[0]!.legend = legend.join('; ');
  return sections;
}

/** Layout of a sheet, in pixels. */
const FACE = 96;
const PAD = 8;
const LINE = 14;
const FONT = 12;
const TITLE = 22;
const FRAME = 3;
const COLOURS = { right: '#2e9d3e', wrong: '#d22f27', unknown: '#9a9a9a' } as const;

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/**
 * Draws sections of faces as one PNG: each section a title, then rows of `columns` faces (96x96, framed) with their
 * caption lines. A face that cannot be read is a FerCleanError naming its file.
 */
export async function renderSheet(sections: SheetSection[], opts: { columns?: number; note?: string } = {}): Promise<Buffer> {
  const { decodeRgb } = await import('../../features/preprocess.js');
  const columns = opts.columns ?? 8;
  const maxLines = Math.max(1, ...sections.flatMap((s) => s.faces.map((f) => f.lines.length)));
  const cellW = FACE + 2 * FRAME + 2 * PAD + 16;
  const cellH = FACE + 2 * FRAME + PAD + maxLines * LINE + PAD;
  const width = PAD + columns * cellW;
  const composites: OverlayOptions[] = [];
  const svg: string[] = [];
  let y = PAD;
  if (opts.note) {
    svg.push(`<text x="${PAD}" y="${y + FONT}" font-size="${FONT}" fill="#444">${xml(opts.note)}</text>`);
    y += LINE + PAD;
  }
  for (const section of sections) {
    svg.push(`<text x="${PAD}" y="${y + 15}" font-size="15" font-weight="bold" fill="#111">${xml(section.title)}</text>`);
    y += TITLE;
    if (section.legend) {
      svg.push(`<text x="${PAD}" y="${y + FONT}" font-size="${FONT}" fill="#444">${xml(section.legend)}</text>`);
      y += LINE + 2;
    }
    y += PAD;
    if (section.faces.length === 0) {
      svg.push(`<text x="${PAD}" y="${y + FONT}" font-size="${FONT}" fill="#444">(none)</text>`);
      y += LINE + PAD;
    }
    for (const [k, face] of section.faces.entries()) {
      const x0 = PAD + (k % columns) * cellW + PAD;
      const y0 = y + Math.floor(k / columns) * cellH;
      const rgb = await decodeRgb(face.file, face.box);
      const tile = await sharp(Buffer.from(rgb.data.buffer, rgb.data.byteOffset, rgb.data.byteLength), {
        raw: { width: rgb.width, height: rgb.height, channels: 3 },
      })
        .resize(FACE, FACE, { fit: 'contain', background: { r: 0, g: 0, b: 0 }, kernel: 'lanczos3' })
        .png()
        .toBuffer();
      composites.push({ input: tile, left: x0 + FRAME, top: y0 + FRAME });
      svg.push(`<rect x="${x0 + FRAME / 2}" y="${y0 + FRAME / 2}" width="${FACE + FRAME}" height="${FACE + FRAME}" fill="none" stroke="${COLOURS[face.mark]}" stroke-width="${FRAME}"/>`);
      face.lines.forEach((line, i) => {
        const ty = y0 + FACE + 2 * FRAME + PAD / 2 + (i + 1) * LINE - 3;
        svg.push(`<text x="${x0}" y="${ty}" font-size="${FONT}" fill="#111">${xml(line)}</text>`);
      });
    }
    y += Math.ceil(section.faces.length / columns) * cellH + PAD;
  }
  const height = y;
  const text = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">${svg.join('')}</g></svg>`,
  );
  try {
    return await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
      .composite([...composites, { input: text, left: 0, top: 0 }])
      .png()
      .toBuffer();
  } catch (e) {
    throw new FerCleanError(`cannot draw the contact sheet: ${(e as Error).message.split('\n')[0]}`);
  }
}
