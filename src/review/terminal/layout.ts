import type { ColorMode } from './face.js';
import { layoutLegend, legendEntries } from './help.js';

/** Where things go on a terminal of `cols` x `rows`. */
export interface Layout {
  cols: number;
  /** Lines drawn: one less than the terminal, so Ink never has to clear the whole screen. */
  height: number;
  bodyRows: number;
  faceCols: number;
  faceRows: number;
  panelWidth: number;
  legend: string[];
}

export function computeLayout(cols: number, rows: number, classes: number): Layout {
  const legend = layoutLegend(legendEntries(classes), Math.max(20, cols - 1));
  const height = Math.max(12, rows - 1);
  // header, progress, legend lines, status line
  const bodyRows = Math.max(6, height - 3 - legend.length);
  // A cell is one pixel wide and two tall; leave at least 40 columns for the labels and bars.
  const faceRows = Math.max(4, Math.min(bodyRows, Math.floor((cols - 42) / 2), 48));
  const faceCols = faceRows * 2;
  return { cols, height, bodyRows, faceCols, faceRows, panelWidth: Math.max(20, cols - faceCols - 2), legend };
}

export const faceKey = (imageId: number, l: Layout, mode: ColorMode): string => `${imageId}:${l.faceCols}x${l.faceRows}:${mode}`;

/** Where things go on the duplicate-group screen (`review --duplicates`). */
export interface GroupLayout {
  cols: number;
  height: number;
  bodyRows: number;
  /** Faces drawn side by side (the group's first ones; the rest are listed). */
  faces: number;
  faceCols: number;
  faceRows: number;
  /** Image lines under the faces (one per image, the rest summed up). */
  listed: number;
  legend: string[];
}

/** At most this many image lines under the faces. */
const GROUP_LIST_MAX = 6;

/**
 * Sizes the group screen: the legend, then the body (a line about the group, the faces in a row, one line per image,
 * the class keys, the group's state), with the faces as large as what is left allows and at least 8 cells wide.
 */
/** The narrowest a face of a duplicate group is drawn (columns) before fewer faces are shown side by side. */
export const GROUP_FACE_MIN_COLS = 16;

export function computeGroupLayout(cols: number, rows: number, members: number, legendEntries: string[]): GroupLayout {
  const legend = layoutLegend(legendEntries, Math.max(20, cols - 1));
  const height = Math.max(12, rows - 1);
  const bodyRows = Math.max(8, height - 3 - legend.length);
  const listed = Math.min(members, GROUP_LIST_MAX);
  // about, faces' label row, image lines (+1 when some are summed up), keep line, state line
  const textRows = 1 + 1 + listed + (members > listed ? 1 : 0) + 2;
  const faceRows = Math.max(3, Math.min(24, bodyRows - textRows));
  // every member side by side while each face keeps GROUP_FACE_MIN_COLS: faces shrink to make room (a 3-image group
  // on 120 columns showed only 2 faces at full height); past that, the list below names the rest
  const fit = Math.max(1, Math.floor((cols + 2) / (GROUP_FACE_MIN_COLS + 2)));
  const faces = Math.max(1, Math.min(members, fit));
  const faceCols = Math.max(8, Math.min(faceRows * 2, Math.floor((cols + 2) / faces) - 2));
  return { cols, height, bodyRows, faces, faceCols, faceRows: Math.min(faceRows, Math.ceil(faceCols / 2)), listed, legend };
}
