/**
 * The review screen's pieces, each rendered from a Snapshot and nothing else (no SQL, no session calls): the item
 * with its labels and bars, the end of the queue, a page of text (help, filter, bulk confirmation), the progress line.
 */
import type { ReactElement, ReactNode } from 'react';
import { Box, Text } from 'ink';
import { describeFilter } from '../domain/order.js';
import type { GroupLayout, Layout } from './layout.js';
import type { GroupItem, GroupMember } from '../domain/groups.js';
import type { Shown, Snapshot } from '../session/session.js';
import type { Stats } from '../domain/progress.js';
import { formatDuration } from '../../format.js';
import { printable } from '../../printable.js';

/** The frame both review screens share: header, the body, the progress line, the key legend, the status line. */
export function Screen(props: { width: number; height: number; header: string; progress: string; legend: readonly string[]; status: string; children: ReactNode }): ReactElement {
  return (
    <Box flexDirection="column" width={props.width} height={props.height}>
      <Text bold wrap="truncate-end">
        {props.header}
      </Text>
      {props.children}
      <Text color="cyan" wrap="truncate-end">
        {props.progress}
      </Text>
      {props.legend.map((l, i) => (
        <Text key={i} dimColor wrap="truncate-end">
          {l}
        </Text>
      ))}
      <Text color="yellow" wrap="truncate-end">
        {props.status}
      </Text>
    </Box>
  );
}

export function ItemView({
  shown,
  taxonomy,
  face,
  layout,
  external,
}: {
  shown: Shown;
  taxonomy: readonly string[];
  face: string[] | undefined;
  layout: Layout;
  /** The face is painted by a FaceSink: leave its place empty. */
  external: boolean;
}): ReactElement {
  const { item, detail, decision } = shown;
  const w = layout.panelWidth;
  const barWidth = Math.max(5, w - 22);
  return (
    <Box flexDirection="row" height={layout.bodyRows}>
      <Box flexDirection="column" width={layout.faceCols} marginRight={2}>
        {face && external
          ? null
          : face
          ? face.map((line, i) => (
              <Text key={i} wrap="truncate-end">
                {line}
              </Text>
            ))
          : <Text dimColor>(drawing…)</Text>}
      </Box>
      <Box flexDirection="column" width={w}>
        <Text wrap="truncate-start">
          {printable(item.path)} <Text dimColor>({printable(item.split)})</Text>
          {detail.quality ? <Text color="red"> [{detail.quality}]</Text> : null}
          {detail.flags?.length ? <Text color="red"> [{detail.flags.join(', ')}]</Text> : null}
        </Text>
        <Text>
          given{'    '}<Text color="yellow" bold>{item.given}</Text>
          {item.runGiven !== item.given ? <Text dimColor> (run trained on {item.runGiven})</Text> : null}
        </Text>
        <Text>
          proposed <Text color="green" bold>{item.proposed}</Text>
        </Text>
        <Text wrap="truncate-end">
          margin {fmt(item.margin)} · importance {fmt(item.importance)}
          {detail.importanceMean !== null ? ` (mean ${fmt(detail.importanceMean)})` : ''}
        </Text>
        <Text wrap="truncate-end">{estimateLine(shown.estimate)}</Text>
        {taxonomy.map((cls, i) => {
          const p = detail.probs[i] ?? 0;
          const isGiven = cls === item.given;
          const isProposed = cls === item.proposed;
          const color = isProposed ? 'green' : isGiven ? 'yellow' : undefined;
          return (
            <Text key={cls} wrap="truncate-end">
              {i + 1} {cls.padEnd(10)}
              <Text color={color} dimColor={!color}>
                {bar(p, barWidth)}
              </Text>{' '}
              {p.toFixed(2)}
              {isGiven ? ' G' : ''}
              {isProposed ? ' P' : ''}
            </Text>
          );
        })}
        <Text> </Text>
        {decision ? (
          <Text wrap="truncate-end">
            decision: <Text bold>{decision.action}</Text> → {decision.label} <Text dimColor>by {printable(decision.annotator)}</Text>
          </Text>
        ) : (
          <Text dimColor>undecided</Text>
        )}
      </Box>
    </Box>
  );
}

/** The bulk accept's confirmation page. */
export function bulkLines(o: { minEstimate: number; items: number; expectedWrong: number; held: number; fittedOn: number }): string[] {
  return [
    `Bulk accept: every undecided proposal with estimate >= ${o.minEstimate.toFixed(2)}`,
    '',
    `  ${o.items} proposal(s) would be accepted; expected wrong: ${o.expectedWrong.toFixed(1)}` +
      (o.items ? ` (${((100 * o.expectedWrong) / o.items).toFixed(1)}%)` : ''),
    `  (estimate refitted on ${o.fittedOn} reviewer decisions${o.held ? `; ${o.held} more are held by other sessions and left alone` : ''})`,
    '',
    '  y      accept them all: each is a decision of its own, marked as bulk with its estimate',
    '  + / -  raise / lower the threshold by 0.01',
    '  other  cancel',
    '',
    'u undoes the whole bulk accept at once.',
  ];
}

/** Why nothing is shown, from the snapshot's end state. */
export function endLines(snap: Pick<Snapshot, 'end' | 'stats' | 'filter'>): string[] {
  const end = snap.end ?? { skipped: 0, held: 0, undecided: 0 };
  const lines: string[] = [];
  if (end.undecided === 0) lines.push(`End of the queue: all ${snap.stats.total} items are reviewed.`);
  else {
    lines.push(snap.filter ? `End of the filtered queue (${describeFilter(snap.filter)}).` : 'End of the queue for you.');
    if (end.skipped) lines.push(`${end.skipped} item(s) you skipped are still undecided: press → or n to go through them again.`);
    if (end.held) lines.push(`${end.held} item(s) are being reviewed by other annotators right now.`);
    lines.push(`${end.undecided} of ${snap.stats.total} items in the run are undecided.`);
    if (snap.filter) lines.push('Press / then 0 to clear the filter.');
  }
  lines.push('← or p to go back to decided items, u to undo your last decision, q to quit.');
  return lines;
}

export function EndOfQueue({ snap, rows }: { snap: Snapshot; rows: number }): ReactElement {
  return (
    <Box flexDirection="column" height={rows}>
      {endLines(snap).map((l, i) => (
        <Text key={i} bold={i === 0}>
          {l}
        </Text>
      ))}
    </Box>
  );
}

export function Page({ lines, width, rows }: { lines: string[]; width: number; rows: number }): ReactElement {
  return (
    <Box flexDirection="column" height={rows} width={width}>
      {lines.slice(0, rows).map((l, i) => (
        <Text key={i} wrap="truncate-end">
          {l || ' '}
        </Text>
      ))}
    </Box>
  );
}

/** The progress line under the body, shortened to fit `cols`. */
export function progressLine(stats: Stats, cols: number): string {
  const tail =
    ` · ${stats.ratePerMin.toFixed(1)}/min · ETA ${formatDuration(stats.etaSeconds)}` +
    (stats.filtered ? ` · filter ${stats.filtered.reviewed}/${stats.filtered.total}` : '') +
    (stats.heldByOthers ? ` · ${stats.heldByOthers} held by others` : '');
  const long = `${stats.reviewed}/${stats.total} reviewed · ${stats.accepted} accepted · ${stats.rejected} rejected · ${stats.manual} manual` + tail;
  if (long.length <= cols) return long;
  return `${stats.reviewed}/${stats.total} done · ${stats.accepted} acc · ${stats.rejected} rej · ${stats.manual} man` + tail;
}

const BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A horizontal bar of `width` cells for p in [0, 1], in eighths of a cell. */
export function bar(p: number, width: number): string {
  const eighths = Math.round(Math.max(0, Math.min(1, p)) * width * 8);
  const full = Math.floor(eighths / 8);
  const part = BLOCKS[eighths % 8]!;
  return ('█'.repeat(full) + part).padEnd(width, ' ');
}

const fmt = (v: number | null): string => (v === null ? '–' : v.toFixed(2));

/**
 * The proposal's estimated correctness, P(a reviewer accepts), with what it rests on: 'prior' (the run alone, no
 * decision yet) or 'fit on N' (N reviewer decisions); 'explore' marks an item placed by a random draw.
 */
export function estimateLine(e: Shown['estimate']): string {
  if (e === undefined) return 'P(accept) …';
  const basis = e.fittedOn > 0 ? `fit on ${e.fittedOn}` : 'prior';
  return `P(accept) ${e.p.toFixed(2)} · ${basis}${e.explore ? ' · explore' : ''}`;
}

/** What the group's state line says: open, the label kept (by whom), or different faces. */
export function settlementLine(settled: GroupItem['settled']): string {
  if (settled === null) return 'open: the labels disagree';
  if (settled.kind === 'different') return `settled: different faces (by ${printable(settled.by)})`;
  return `settled: ${settled.label} for every image` + (settled.by ? ` (kept by ${printable(settled.by)})` : ' (labels in force agree)');
}

/** One line per image of a group: its letter (as under the faces), path, split, given label and label in force. */
export function memberLine(m: GroupMember, i: number): string {
  const given = m.given ?? '(none)';
  const now = m.label !== m.given ? ` → ${m.label ?? '(none)'}${m.decidedBy ? ` (${printable(m.decidedBy)})` : ''}` : '';
  return `${memberLetter(i)} ${printable(m.path)} (${printable(m.split)}) ${given}${now}`;
}

export const memberLetter = (i: number): string => (i < 26 ? String.fromCharCode(65 + i) : `#${i + 1}`);

/**
 * A duplicate group (`review --duplicates`): what joined it, its faces side by side (each with its letter and label
 * under it), one line per image, the class keys (the labels the images carry in bold) and the group's state.
 */
export function GroupView({
  item,
  faces,
  taxonomy,
  layout,
}: {
  item: GroupItem;
  faces: (string[] | undefined)[];
  taxonomy: readonly string[];
  layout: GroupLayout;
}): ReactElement {
  const shown = item.members.slice(0, layout.faces);
  const carried = new Set(item.members.map((m) => m.label));
  const about =
    `${item.members.length} images · ${item.kind}` +
    (item.kind === 'near' ? ` · cosine ${item.similarity.toFixed(3)}` : '') +
    (item.pixelSimilarity !== null ? ` · pixels ${item.pixelSimilarity.toFixed(3)}` : '') +
    ` · splits ${item.splits.join(', ')}` +
    (item.splits.length > 1 ? ' (leak across splits)' : '');
  const rest = item.members.length - layout.listed;
  return (
    <Box flexDirection="column" height={layout.bodyRows}>
      <Text wrap="truncate-end">{about}</Text>
      <Box flexDirection="row">
        {shown.map((m, i) => (
          <Box key={m.imageId} flexDirection="column" width={layout.faceCols} marginRight={2}>
            {faces[i]
              ? faces[i]!.map((line, j) => (
                  <Text key={j} wrap="truncate-end">
                    {line}
                  </Text>
                ))
              : <Text dimColor>(drawing…)</Text>}
            <Text wrap="truncate-end">
              {memberLetter(i)} <Text color={m.label === m.given ? 'yellow' : 'green'} bold>{m.label ?? '(none)'}</Text>
            </Text>
          </Box>
        ))}
      </Box>
      {item.members.slice(0, layout.listed).map((m, i) => (
        <Text key={m.imageId} wrap="truncate-start">
          {memberLine(m, i)}
        </Text>
      ))}
      {rest > 0 ? <Text dimColor>… and {rest} more image(s)</Text> : null}
      <Text wrap="truncate-end">
        keep:{' '}
        {taxonomy.map((c, i) => (
          <Text key={c} bold={carried.has(c)} dimColor={!carried.has(c)}>
            {i ? '  ' : ''}
            {i + 1} {c}
          </Text>
        ))}
      </Text>
      <Text color={item.settled ? 'green' : 'red'} wrap="truncate-end">
        {settlementLine(item.settled)}
      </Text>
    </Box>
  );
}

/** The group screen's progress line. */
export function groupProgressLine(c: { total: number; open: number; kept: number; different: number }, sessionDecisions: number): string {
  return `${c.total - c.open}/${c.total} groups settled · ${c.kept} one label · ${c.different} different faces · ${sessionDecisions} by you this session`;
}
