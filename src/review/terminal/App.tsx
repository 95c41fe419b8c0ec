/**
 * The review screen: holds the session's latest Snapshot in React state and renders from it; keys go to the session
 * through keys.ts, faces, the lease tick and the background steps are hooks (hooks.ts), the pieces are in views.tsx.
 */
import { useInsertionEffect, useRef, useState, type ReactElement } from 'react';
import { Box, Text, useApp, useInput } from 'ink';
import type { ColorMode } from './face.js';
import { filterLines, helpLines } from './help.js';
import { applyEffect, handleKey, initialKeyState, keysOfInput, needsWholeQueue, type Effect, type KeyState } from './keys.js';
import { describeFilter } from '../domain/order.js';
import type { ReviewSession, Snapshot } from '../session/session.js';
import type { FaceSink } from './overlay.js';
import { computeLayout } from './layout.js';
import { printable } from '../../printable.js';
import { useBackground, useFaces, useTerminalSize, useTick } from './hooks.js';
import { bulkLines, EndOfQueue, ItemView, Page, progressLine, Screen } from './views.js';

export { computeLayout, type Layout } from './layout.js';
export { bar, bulkLines, estimateLine } from './views.js';

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
  /** The session's snapshot to show first (the CLI takes it to draw the first face); else one is taken on mount. */
  snapshot?: Snapshot;
}

/**
 * How long a key that waits for the rest of the queue lets Ink draw the status line saying so (Ink writes a frame at
 * most every 1000 / maxFps ms) before the rest is read.
 */
const WAIT_DRAWN_MS = 40;

/** What the screen shows besides the snapshot: the key handler's state and the status line. */
interface Ui {
  keys: KeyState;
  status: string | null;
}

export function App({ session, colorMode, tickMs = 10_000, onFace, faceSink, faces: given, snapshot: opening }: AppProps): ReactElement {
  const { exit } = useApp();
  const { cols, rows } = useTerminalSize();
  const [snap, setSnap] = useState<Snapshot>(() => opening ?? session.snapshot());
  // Key state and status line are kept in a ref as well as in state: Ink re-subscribes the input handler only after
  // a render's effects run, so a key typed right after another must not see the previous render's values.
  const ui = useRef<Ui>({ keys: initialKeyState(session.taxonomy), status: null });
  const [{ keys, status: statusLine }, setUi] = useState<Ui>(ui.current);
  const taxonomy = session.taxonomy;
  const layout = computeLayout(cols, rows, taxonomy.length);
  const face = useFaces(snap, layout, colorMode, given, onFace);
  useTick(session, tickMs, setSnap);
  useBackground(session, setSnap);

  /** Runs an effect on the session; returns the snapshot to show (if it gives one) and keeps ui.current up to date. */
  const run = (effect: Effect): Snapshot | undefined => {
    try {
      const r = applyEffect(session, effect);
      if (r.status !== undefined) ui.current = { ...ui.current, status: r.status };
      // A bulk accept that cannot be offered (too few decisions) says why on the status line instead.
      if (ui.current.keys.mode === 'bulk' && !session.bulkOffer) ui.current = { ...ui.current, keys: { ...ui.current.keys, mode: 'main' } };
      return r.snapshot;
    } catch (e) {
      // A database kept locked by another process past the busy timeout: nothing was written; say so and go on.
      if (!String((e as { code?: unknown }).code ?? '').startsWith('SQLITE_BUSY')) throw e;
      ui.current = { ...ui.current, status: `not saved, the database is busy (${printable((e as Error).message)}): press the key again` };
      return undefined;
    }
  };

  // A key that needs the whole queue (needsWholeQueue) while its rest is still being read waits for it, with a
  // status line saying so; the keys typed after it wait too (quit included), so that all apply in the order typed.
  const waiting = useRef<Effect[]>([]);
  const runWaiting = (): void => {
    const effects = waiting.current;
    waiting.current = [];
    ui.current = { ...ui.current, status: null };
    let next: Snapshot | undefined;
    for (const effect of effects) {
      if (effect.kind === 'quit') {
        exit();
        return;
      }
      next = run(effect) ?? next;
    }
    if (next) setSnap(next);
    setUi(ui.current);
  };

  useInput((input, key) => {
    let next: Snapshot | undefined;
    let changed = false;
    // Every key of the chunk, in order (keys that arrive together are not one unknown key).
    for (const k of keysOfInput(input, key)) {
      const { state, effect } = handleKey(ui.current.keys, k);
      ui.current = { ...ui.current, keys: state };
      if (waiting.current.length > 0 || (effect.kind !== 'quit' && !session.loaded && needsWholeQueue(effect))) {
        if (effect.kind === 'none') continue;
        if (waiting.current.length === 0) {
          ui.current = { ...ui.current, status: `reading the rest of the queue (${session.items.length} of ${session.total} read): the key waits for it` };
          setTimeout(runWaiting, WAIT_DRAWN_MS);
        }
        waiting.current.push(effect);
        changed = true;
        continue;
      }
      if (effect.kind === 'quit') {
        exit();
        return;
      }
      if (effect.kind === 'none') continue;
      changed = true;
      next = run(effect) ?? next;
    }
    if (!changed) return;
    if (next) setSnap(next);
    setUi(ui.current);
  });

  const { mode, filterBy } = keys;
  const visibleFace = mode === 'main' && snap.shown && face ? face : null;
  // The sink paints before Ink writes the frame (insertion effects run before the commit Ink writes from): hiding
  // erases the old face first, so the erasing never wipes what Ink draws in its place; a shown face is repainted
  // after Ink's write by the sink itself.
  useInsertionEffect(() => faceSink?.show(visibleFace, 1, 0), [faceSink, visibleFace]);

  const header =
    `fer-clean review · ${printable(session.run.dataset.name)} · run ${session.run.id} (${session.run.method}) · ${printable(session.who.annotator)}` +
    (snap.filter ? ` · filter: ${describeFilter(snap.filter)}` : '') +
    (snap.shown ? ` · item ${snap.position.index}/${snap.position.of}` : '');

  let body: ReactElement;
  if (mode === 'help') body = <Page lines={helpLines(taxonomy)} width={layout.cols} rows={layout.bodyRows} />;
  else if (mode === 'filter') body = <Page lines={filterLines(taxonomy, filterBy)} width={layout.cols} rows={layout.bodyRows} />;
  else if (mode === 'bulk' && snap.bulkOffer) body = <Page lines={bulkLines(snap.bulkOffer)} width={layout.cols} rows={layout.bodyRows} />;
  else if (snap.stats.total === 0) {
    body = (
      <Box flexDirection="column" height={layout.bodyRows}>
        <Text bold>Nothing to review: run {session.run.id} proposes no relabels.</Text>
        <Text>Every image kept its given label. Press q to quit.</Text>
      </Box>
    );
  } else if (!snap.shown) body = <EndOfQueue snap={snap} rows={layout.bodyRows} />;
  else body = <ItemView shown={snap.shown} taxonomy={taxonomy} face={face} layout={layout} external={Boolean(faceSink)} />;

  const status =
    mode === 'filter'
      ? filterBy === 'flag'
        ? 'filter: press 1-6 for a quality flag, g, p, 0 or Esc'
        : `filter: press 1-${taxonomy.length}, g, p, f, 0 or Esc`
      : mode === 'bulk'
        ? 'bulk accept: y accepts, + / - change the threshold, any other key cancels'
        : printable(statusLine ?? ''); // may quote a holder's name or an error from the data

  return (
    <Screen width={layout.cols} height={layout.height} header={header} progress={progressLine(snap.stats, layout.cols)} legend={layout.legend} status={status}>
      {body}
    </Screen>
  );
}
