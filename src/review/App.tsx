import { useEffect, useRef, useState, type ReactElement } from 'react';
import { Box, Text, useApp, useInput, useStdout } from 'ink';
import { renderFace, type ColorMode } from './face.js';
import { printable } from '../printable.js';
import type { FaceBox } from '../features/facebox.js';
import { filterLines, helpLines } from './help.js';
import { applyEffect, handleKey, initialKeyState, keysOfInput, type KeyState } from './keys.js';
import { describeFilter, type ReviewSession } from './session.js';
import type { QueueItem } from './queue.js';
import type { FaceSink } from './overlay.js';
import { computeLayout, faceKey, type Layout } from './layout.js';
import { formatDuration } from '../format.js';
import { REFIT_EVERY } from './learner.js';

export { computeLayout, type Layout } from './layout.js';

/** A due refit of the estimates waits for this long without a new frame (a pause in the keys). */
export const RELEARN_PAUSE_MS = 150;

export interface AppProps {
  session: ReviewSession;
  colorMode: ColorMode;
  /** How often the lease is renewed and other sessions' work re-read (ms). */
  tickMs?: number;
  /** Called after every frame whose face is drawn, with the image shown (benchmarks, tests). */
  onFace?: (imageId: number) => void;
  /**
   * Draws the face outside Ink's frame (a real terminal: see overlay.ts); without one, the face is part of the frame.
   */
  faceSink?: FaceSink;
  /** Faces already drawn, by faceKey (the CLI draws the first one while Ink loads). */
  faces?: Map<string, string[]>;
}

function useTerminalSize(): { cols: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => void stdout.off('resize', onResize);
  }, [stdout]);
  return size;
}

export function App({ session, colorMode, tickMs = 10_000, onFace, faceSink, faces: given }: AppProps): ReactElement {
  const { exit } = useApp();
  const { cols, rows } = useTerminalSize();
  const [, setVersion] = useState(0);
  const bump = () => setVersion((v) => v + 1);
  // Key state and status line live in a ref, not in state: Ink re-subscribes the input handler only after a render's
  // effects run, so a key typed right after another must not see the previous render's values.
  const ui = useRef<{ keys: KeyState; status: string | null }>({ keys: initialKeyState(session.taxonomy), status: null });
  const faces = useRef(given ?? new Map<string, string[]>());
  const loading = useRef(new Set<string>());
  const taxonomy = session.taxonomy;
  const layout = computeLayout(cols, rows, taxonomy.length);
  const item = session.current;

  // The face of the item shown (re-rendered when it arrives), then the likely next one ahead of time.
  const shownKey = item ? faceKey(item.imageId, layout, colorMode) : null;
  const shown = useRef<string | null>(null);
  shown.current = shownKey;
  const face = shownKey ? faces.current.get(shownKey) : undefined;

  /** Draws a face into the cache; whichever load finishes (shown item or prefetch), the screen follows. */
  const loadFace = (it: QueueItem): void => {
    const key = faceKey(it.imageId, layout, colorMode);
    if (faces.current.has(key) || loading.current.has(key)) return;
    loading.current.add(key);
    const done = (lines: string[]) => {
      if (faces.current.size > 64) faces.current.clear();
      faces.current.set(key, lines);
      loading.current.delete(key);
      if (shown.current === key) bump();
    };
    let file: string;
    let box: FaceBox | null;
    try {
      ({ file, box } = session.detail(it));
    } catch (e) {
      done([`(${printable((e as Error).message)})`]);
      return;
    }
    void renderFace(file, layout.faceCols, layout.faceRows, colorMode, box)
      .catch((e: Error) => [`(cannot draw: ${printable(e.message)})`])
      .then(done);
  };

  useEffect(() => {
    if (item && !face) loadFace(item);
    const next = session.peekNext();
    if (next) loadFace(next);
  });
  useEffect(() => {
    if (item && face) onFace?.(item.imageId);
  }, [shownKey, Boolean(face)]);

  useEffect(() => {
    const t = setInterval(() => {
      session.tick();
      bump();
    }, tickMs);
    return () => clearInterval(t);
  }, [session, tickMs]);

  // After a frame is drawn, never between a key and the next face: the rest of the queue is read (the session opens
  // with its first window), then the estimates are (re)fitted: at start, then every few decisions (relearnDue). Two
  // steps, so that a key typed meanwhile is handled between them. A refit (a frame's time or more) waits for a pause
  // in the keys, RELEARN_PAUSE_MS without a frame, but no longer than REFIT_EVERY more decisions.
  const relearnTimer = useRef<{ timer: ReturnType<typeof setTimeout>; now: boolean } | null>(null);
  useEffect(() => {
    if (session.loaded && !session.relearnDue()) return;
    const now = !session.loaded || !session.learner.ready || session.learner.pending >= 2 * REFIT_EVERY;
    if (relearnTimer.current) {
      if (relearnTimer.current.now) return;
      clearTimeout(relearnTimer.current.timer);
    }
    const timer = setTimeout(
      () => {
        relearnTimer.current = null;
        if (session.loaded) session.relearn();
        else session.loadRest();
        bump();
      },
      now ? 0 : RELEARN_PAUSE_MS,
    );
    relearnTimer.current = { timer, now };
  });
  useEffect(() => () => void (relearnTimer.current && clearTimeout(relearnTimer.current.timer)), []);

  useInput((input, key) => {
    let redraw = false;
    // Every key of the chunk, in order (keys that arrive together are not one unknown key).
    for (const k of keysOfInput(input, key)) {
      const { state, effect } = handleKey(ui.current.keys, k);
      ui.current.keys = state;
      if (effect.kind === 'quit') {
        exit();
        return;
      }
      if (effect.kind === 'none') continue;
      redraw = true;
      try {
        const status = applyEffect(session, effect);
        if (status !== undefined) ui.current.status = status;
        // A bulk accept that cannot be offered (too few decisions) says why on the status line instead.
        if (ui.current.keys.mode === 'bulk' && !session.bulkOffer) ui.current.keys = { ...ui.current.keys, mode: 'main' };
      } catch (e) {
        // A database kept locked by another process past the busy timeout: nothing was written; say so and go on.
        if (!String((e as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY')) throw e;
        ui.current.status = `not saved, the database is busy (${printable((e as Error).message)}): press the key again`;
      }
    }
    if (redraw) bump();
  });

  const { mode, filterBy } = ui.current.keys;
  const stats = session.stats();
  const pos = session.position;
  const header =
    `fer-clean review · ${printable(session.run.dataset.name)} · run ${session.run.id} (${session.run.method}) · ${printable(session.who.annotator)}` +
    (session.filter ? ` · filter: ${describeFilter(session.filter)}` : '') +
    (item ? ` · item ${pos.index}/${pos.of}` : '');

  let body: ReactElement;
  if (mode === 'help') body = <Page lines={helpLines(taxonomy)} width={layout.cols} rows={layout.bodyRows} />;
  else if (mode === 'filter') body = <Page lines={filterLines(taxonomy, filterBy)} width={layout.cols} rows={layout.bodyRows} />;
  else if (mode === 'bulk' && session.bulkOffer) body = <Page lines={bulkLines(session.bulkOffer)} width={layout.cols} rows={layout.bodyRows} />;
  else if (session.total === 0) {
    body = (
      <Box flexDirection="column" height={layout.bodyRows}>
        <Text bold>Nothing to review: run {session.run.id} proposes no relabels.</Text>
        <Text>Every image kept its given label. Press q to quit.</Text>
      </Box>
    );
  } else if (!item) body = <EndOfQueue session={session} rows={layout.bodyRows} />;
  else body = <ItemView session={session} item={item} face={face} layout={layout} external={Boolean(faceSink)} />;
  // The sink paints now, before Ink writes this frame: hiding erases the old face first, so the erasing never
  // wipes what Ink draws in its place; a shown face is repainted after Ink's write by the sink itself.
  faceSink?.show(mode === 'main' && item && face ? face : null, 1, 0);

  const tail =
    ` · ${stats.ratePerMin.toFixed(1)}/min · ETA ${formatDuration(stats.etaSeconds)}` +
    (stats.filtered ? ` · filter ${stats.filtered.reviewed}/${stats.filtered.total}` : '') +
    (stats.heldByOthers ? ` · ${stats.heldByOthers} held by others` : '');
  let progress =
    `${stats.reviewed}/${stats.total} reviewed · ${stats.accepted} accepted · ${stats.rejected} rejected · ${stats.manual} manual` + tail;
  if (progress.length > layout.cols) {
    progress = `${stats.reviewed}/${stats.total} done · ${stats.accepted} acc · ${stats.rejected} rej · ${stats.manual} man` + tail;
  }
  const status =
    mode === 'filter'
      ? `filter: press 1-${taxonomy.length}, g, p, 0 or Esc`
      : mode === 'bulk'
        ? 'bulk accept: y accepts, + / - change the threshold, any other key cancels'
        : printable(ui.current.status ?? ''); // may quote a holder's name or an error from the data

  return (
    <Box flexDirection="column" width={layout.cols} height={layout.height}>
      <Text bold wrap="truncate-end">
        {header}
      </Text>
      {body}
      <Text color="cyan" wrap="truncate-end">
        {progress}
      </Text>
      {layout.legend.map((l, i) => (
        <Text key={i} dimColor wrap="truncate-end">
          {l}
        </Text>
      ))}
      <Text color="yellow" wrap="truncate-end">
        {status}
      </Text>
    </Box>
  );
}

function ItemView({
  session,
  item,
  face,
  layout,
  external,
}: {
  session: ReviewSession;
  item: QueueItem;
  face: string[] | undefined;
  layout: Layout;
  /** The face is painted by a FaceSink: leave its place empty. */
  external: boolean;
}): ReactElement {
  const detail = session.detail(item);
  const decision = session.decisionOf(item);
  const taxonomy = session.taxonomy;
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
        <Text wrap="truncate-end">{estimateLine(session, item)}</Text>
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

function EndOfQueue({ session, rows }: { session: ReviewSession; rows: number }): ReactElement {
  const end = session.endState();
  const stats = session.stats();
  const lines: string[] = [];
  if (end.undecided === 0) lines.push(`End of the queue: all ${stats.total} items are reviewed.`);
  else {
    lines.push(session.filter ? `End of the filtered queue (${describeFilter(session.filter)}).` : 'End of the queue for you.');
    if (end.skipped) lines.push(`${end.skipped} item(s) you skipped are still undecided: press → or n to go through them again.`);
    if (end.held) lines.push(`${end.held} item(s) are being reviewed by other annotators right now.`);
    lines.push(`${end.undecided} of ${stats.total} items in the run are undecided.`);
    if (session.filter) lines.push('Press / then 0 to clear the filter.');
  }
  lines.push('← or p to go back to decided items, u to undo your last decision, q to quit.');
  return (
    <Box flexDirection="column" height={rows}>
      {lines.map((l, i) => (
        <Text key={i} bold={i === 0}>
          {l}
        </Text>
      ))}
    </Box>
  );
}

function Page({ lines, width, rows }: { lines: string[]; width: number; rows: number }): ReactElement {
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
export function estimateLine(session: ReviewSession, item: QueueItem): string {
  const e = session.estimateOf(item);
  if (e === undefined) return 'P(accept) …';
  const fit = session.learner.lastFit;
  const basis = fit && fit.fittedOn > 0 ? `fit on ${fit.fittedOn}` : 'prior';
  return `P(accept) ${e.toFixed(2)} · ${basis}${session.learner.isExplore(item.imageId) ? ' · explore' : ''}`;
}

