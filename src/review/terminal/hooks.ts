/**
 * The review screen's hooks, as Ink's examples keep them: the terminal's size, the faces (drawn off the render, in
 * effects), the lease tick and the session's background steps (reading the rest of the queue, refits).
 */
import { useEffect, useRef, useState, type Dispatch, type SetStateAction } from 'react';
import { useStdout } from 'ink';
import { renderFace, type ColorMode } from './face.js';
import { printable } from '../../printable.js';
import { faceKey, type Layout } from './layout.js';
import type { ReviewSession, Snapshot } from '../session/session.js';
import type { ItemDetail, QueueItem } from '../domain/proposals.js';
import type { FaceBox } from '../../features/facebox.js';

export function useTerminalSize(): { cols: number; rows: number } {
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

/**
 * The face of the item shown, drawn in an effect (sharp, off the main thread) and cached by faceKey, then the likely
 * next one ahead of time; undefined while it is being drawn. `given`: faces already drawn (the CLI draws the first
 * one while Ink loads). Calls onFace once a shown item's face is there.
 */
export function useFaces(
  snap: Snapshot,
  layout: Layout,
  colorMode: ColorMode,
  given?: Map<string, string[]>,
  onFace?: (imageId: number) => void,
): string[] | undefined {
  const faces = useRef(given ?? new Map<string, string[]>());
  const loading = useRef(new Set<string>());
  const [, setArrived] = useState(0);
  const shownKey = snap.shown ? faceKey(snap.shown.item.imageId, layout, colorMode) : null;
  const shown = useRef<string | null>(null);
  shown.current = shownKey;
  const face = shownKey ? faces.current.get(shownKey) : undefined;

  useEffect(() => {
    /** Draws a face into the cache; whichever load finishes (shown item or prefetch), the screen follows. */
    const load = (it: { item: QueueItem; detail: ItemDetail }): void => {
      const key = faceKey(it.item.imageId, layout, colorMode);
      if (faces.current.has(key) || loading.current.has(key)) return;
      loading.current.add(key);
      void renderFace(it.detail.file, layout.faceCols, layout.faceRows, colorMode, it.detail.box)
        .catch((e: Error) => [`(cannot draw: ${printable(e.message)})`])
        .then((lines) => {
          if (faces.current.size > 64) faces.current.clear();
          faces.current.set(key, lines);
          loading.current.delete(key);
          if (shown.current === key) setArrived((v) => v + 1);
        });
    };
    if (snap.shown && !face) load(snap.shown);
    if (snap.next) load(snap.next);
  });
  useEffect(() => {
    if (snap.shown && face) onFace?.(snap.shown.item.imageId);
  }, [shownKey, Boolean(face)]);
  return face;
}

/** Every tickMs: the session renews its lease and re-reads what other sessions did. */
export function useTick(session: ReviewSession, tickMs: number, setSnap: (s: Snapshot) => void): void {
  useEffect(() => {
    const t = setInterval(() => setSnap(session.tick()), tickMs);
    return () => clearInterval(t);
  }, [session, tickMs]);
}

/**
 * Runs the session's background steps (ReviewSession.background) after a frame is drawn, never between a key and the
 * next face: one step per timer, so that a key typed meanwhile is handled between two (the rest of the queue and the
 * estimates are read in short steps). A step that may wait for a pause in the keys is put off by every new frame; one
 * that must run now is not. A step that changes nothing shown gives no snapshot and no frame: the next one is planned
 * at once and runs at once (no key came between).
 */
export function useBackground(session: ReviewSession, setSnap: Dispatch<SetStateAction<Snapshot>>): void {
  const timer = useRef<{ timer: ReturnType<typeof setTimeout>; now: boolean } | null>(null);
  const plan = useRef<(chained?: boolean) => void>(() => undefined);
  /** Plans the next step; `chained`: right after a step that drew nothing (no frame, so no key, came between). */
  plan.current = (chained = false) => {
    const step = session.background();
    if (!step) return;
    const now = step.waitMs === 0;
    if (timer.current) {
      if (timer.current.now) return;
      clearTimeout(timer.current.timer);
    }
    const t = setTimeout(() => {
      timer.current = null;
      const snap = session.runBackground();
      if (snap) setSnap(snap);
      else plan.current(true);
    }, chained ? 0 : step.waitMs);
    timer.current = { timer: t, now };
  };
  useEffect(() => plan.current());
  useEffect(() => () => void (timer.current && clearTimeout(timer.current.timer)), []);
}

/**
 * The faces of the group shown (`review --duplicates`), each drawn in an effect and cached by image and size; an
 * entry is undefined while it is being drawn.
 */
export function useGroupFaces(
  files: readonly { imageId: number; file: string; box: FaceBox | null }[],
  cols: number,
  rows: number,
  colorMode: ColorMode,
): (string[] | undefined)[] {
  const faces = useRef(new Map<string, string[]>());
  const loading = useRef(new Set<string>());
  const [, setArrived] = useState(0);
  const mounted = useRef(true);
  useEffect(() => () => void (mounted.current = false), []);
  const keyOf = (imageId: number) => `${imageId}:${cols}x${rows}:${colorMode}`;
  useEffect(() => {
    for (const f of files) {
      const key = keyOf(f.imageId);
      if (faces.current.has(key) || loading.current.has(key)) continue;
      loading.current.add(key);
      void renderFace(f.file, cols, rows, colorMode, f.box)
        .catch((e: Error) => [`(cannot draw: ${printable(e.message)})`])
        .then((lines) => {
          if (faces.current.size > 128) faces.current.clear();
          faces.current.set(key, lines);
          loading.current.delete(key);
          if (mounted.current) setArrived((v) => v + 1);
        });
    }
  });
  return files.map((f) => faces.current.get(keyOf(f.imageId)));
}
