/** Key legend (always on screen) and the help page of `fer-clean review`. */
import { QUALITY_FLAGS } from '../../quality/checks.js';

/** The legend as short entries; the app lays them out on as many lines as the width needs. */
export function legendEntries(classes: number): string[] {
  return [
    'a/⏎ accept',
    'r reject',
    `1-${classes} set label`,
    's skip',
    'u undo',
    'b bulk',
    '←/→ p/n move',
    '/ filter',
    '? help',
    'q quit',
  ];
}

/** Lays legend entries out in lines no wider than `width`. */
export function layoutLegend(entries: string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const e of entries) {
    const next = line ? `${line}  ${e}` : e;
    if (next.length > width && line) {
      lines.push(line);
      line = e;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** The help page: at most 16 lines (it must fit an 80x24 terminal with the legend and progress). */
export function helpLines(taxonomy: readonly string[]): string[] {
  const n = taxonomy.length;
  return [
    'Review the labels the run proposes to change. Each key acts at once and is saved at once.',
    '  a, Enter   accept the proposal: the image takes the proposed label',
    '  r          reject it: the image keeps its given label',
    `  1-${n}        set the label by hand: ${taxonomy.map((c, i) => `${i + 1} ${c}`).join(', ')}`,
    '  s          skip: not a decision; skipped items come back after the rest',
    '  u          undo your last decision or skip and show that image again',
    '  b          bulk accept every undecided proposal with estimate >= 0.95 (+/- change it; asks first)',
    '  ←/→, p/n   previous / next item, decided ones too (to change a decision)',
    `  /          filter: 1-${n} class (g/p first: given/proposed only), f quality flag, 0 all`,
    '  ?          this help (any key closes it)',
    '  q, Ctrl-C  quit; `fer-clean review` again resumes at the first undecided item',
    '',
    'Decisions go to the database the moment a key is pressed: an append-only audit trail (undo adds a row).',
    'Several annotators can review one run at once: the item on screen is leased to one session (2 minutes,',
    "renewed while shown), so nobody else gets it; a crashed session's lease runs out by itself.",
  ];
}

/** The filter prompt's page. */
export function filterLines(taxonomy: readonly string[], by: 'either' | 'given' | 'proposed' | 'flag'): string[] {
  if (by === 'flag') {
    return [
      'Filter: show only items whose image carries the quality flag (`fer-clean quality`)',
      '',
      ...QUALITY_FLAGS.map((f, i) => `  ${i + 1}  ${f}`),
      '',
      '  g / p  filter on a label instead',
      '  0  no filter (all items)           Esc  leave the filter as it is',
    ];
  }
  const scope = by === 'either' ? 'given or proposed label' : `${by} label`;
  return [
    `Filter: show only items whose ${scope} is`,
    '',
    ...taxonomy.map((c, i) => `  ${i + 1}  ${c}`),
    '',
    '  g  match the given label only      p  match the proposed label only',
    '  f  a quality flag instead (non-face, outlier, dark, light, blurry, low-information)',
    '  0  no filter (all items)           Esc  leave the filter as it is',
  ];
}

/** The group screen's legend entries (`review --duplicates`). */
export function groupLegendEntries(classes: number): string[] {
  return [`1-${classes} keep label`, 'd different faces', 'u undo', '←/→ p/n move', '? help', 'q quit'];
}

/** The group screen's help page. */
export function groupHelpLines(taxonomy: readonly string[]): string[] {
  const n = taxonomy.length;
  return [
    'Duplicate groups whose labels disagree: the same picture (or a copy of it) carries different labels.',
    'Each key acts at once and is saved at once.',
    `  1-${n}        keep that label for every image of the group: ${taxonomy.map((c, i) => `${i + 1} ${c}`).join(', ')}`,
    '             (each image gets a decision in force with that label: export and train --trust-decisions use it)',
    '  d          different faces: not the same picture; no label changes, the group is settled',
    '  u          undo your last group decision and show that group again',
    '  ←/→, p/n   previous / next group, settled ones too (to change a decision)',
    '  ?          this help (any key closes it)',
    '  q, Ctrl-C  quit; `fer-clean review --duplicates` again resumes at the first open group',
    '',
    'A group is open while the labels in force of its images disagree. Groups come from `fer-clean quality`.',
  ];
}
