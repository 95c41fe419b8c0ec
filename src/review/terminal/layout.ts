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
