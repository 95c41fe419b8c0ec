/**
 * The review screen's keys as plain functions, testable without a terminal: `splitKeys` cuts what arrives in one
 * chunk into keys, `handleKey` turns one key into the new UI state and an effect, `applyEffect` runs the effect on
 * the session and gives the status line.
 */
import { isFerCleanError } from '../../errors.js';
import type { Verdict } from '../domain/decisions.js';
import type { Filter } from '../domain/order.js';
import type { ReviewSession, Snapshot } from '../session/session.js';
import { QUALITY_FLAGS, type QualityFlag } from '../../quality/checks.js';
import type { GroupSession, GroupSnapshot } from '../session/groups.js';

export type Mode = 'main' | 'help' | 'filter' | 'bulk';

/** The bulk accept's threshold when its key is pressed, and the step of + and -. */
export const BULK_START = 0.95;
export const BULK_STEP = 0.01;

/** What the key handler remembers between keys. */
export interface KeyState {
  mode: Mode;
  /** In filter mode: which label the class keys filter on ('flag': the number keys pick a quality flag). */
  filterBy: Filter['by'];
  /** The dataset's classes (keys 1-9 pick one). */
  taxonomy: readonly string[];
  /** In bulk mode: the threshold offered. */
  bulkMin?: number;
}

/** One key: its text, and the named keys review uses (Ink's Key has these fields). */
export interface KeyPress {
  input: string;
  return?: boolean;
  escape?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
}

/** What a key asks for. 'none': an unbound key (nothing changes, nothing to redraw); 'redraw': only the UI state changed. */
export type Effect =
  | { kind: 'none' }
  | { kind: 'redraw' }
  | { kind: 'quit' }
  | { kind: 'decide'; verdict: Verdict; label?: string }
  | { kind: 'skip' }
  | { kind: 'undo' }
  | { kind: 'move'; dir: 1 | -1 }
  | { kind: 'filter'; filter: Filter | null }
  | { kind: 'flag-filter'; flag: QualityFlag }
  | { kind: 'say'; status: string }
  | { kind: 'bulk-offer'; min: number }
  | { kind: 'bulk'; min: number };

export const initialKeyState = (taxonomy: readonly string[]): KeyState => ({ mode: 'main', filterBy: 'either', taxonomy });

/** The new state and the effect of one key. Pure. */
export function handleKey(state: KeyState, key: KeyPress): { state: KeyState; effect: Effect } {
  const { input } = key;
  const K = state.taxonomy.length;
  const to = (s: Partial<KeyState>, effect: Effect = { kind: 'redraw' }) => ({ state: { ...state, ...s }, effect });
  const classKey = /^[1-9]$/.test(input) ? Number(input) : null;
  if (state.mode === 'help') return to({ mode: 'main' });
  if (state.mode === 'filter') {
    if (key.escape) return to({ mode: 'main' });
    if (input === 'g' || input === 'p') return to({ filterBy: input === 'g' ? 'given' : 'proposed' });
    if (input === 'f') return to({ filterBy: 'flag' });
    if (input === '0') return to({ mode: 'main' }, { kind: 'filter', filter: null });
    if (state.filterBy === 'flag') {
      return classKey !== null && classKey <= QUALITY_FLAGS.length
        ? to({ mode: 'main' }, { kind: 'flag-filter', flag: QUALITY_FLAGS[classKey - 1]! })
        : to({});
    }
    if (classKey !== null && classKey <= K) {
      return to({ mode: 'main' }, { kind: 'filter', filter: { by: state.filterBy, cls: state.taxonomy[classKey - 1]! } });
    }
    return to({});
  }
  if (state.mode === 'bulk') {
    // Confirmation of a bulk accept: y accepts, + / - move the threshold, anything else cancels.
    const min = state.bulkMin ?? BULK_START;
    if (input === 'y') return to({ mode: 'main' }, { kind: 'bulk', min });
    if (input === '+' || input === '=' || input === '-') {
      const next = Math.round(Math.min(1, Math.max(BULK_STEP, min + (input === '-' ? -BULK_STEP : BULK_STEP))) * 100) / 100;
      return to({ bulkMin: next }, { kind: 'bulk-offer', min: next });
    }
    return to({ mode: 'main' }, { kind: 'say', status: 'bulk accept cancelled' });
  }
  if (input === 'q') return to({}, { kind: 'quit' });
  if (input === 'b') return to({ mode: 'bulk', bulkMin: BULK_START }, { kind: 'bulk-offer', min: BULK_START });
  if (input === 'a' || key.return) return to({}, { kind: 'decide', verdict: 'accepted' });
  if (input === 'r') return to({}, { kind: 'decide', verdict: 'rejected' });
  if (classKey !== null) {
    return classKey <= K
      ? to({}, { kind: 'decide', verdict: 'manual', label: state.taxonomy[classKey - 1]! })
      : to({}, { kind: 'say', status: `no class ${classKey}: this dataset has ${K}` });
  }
  if (input === 's') return to({}, { kind: 'skip' });
  if (input === 'u') return to({}, { kind: 'undo' });
  if (key.rightArrow || input === 'n') return to({}, { kind: 'move', dir: 1 });
  if (key.leftArrow || input === 'p') return to({}, { kind: 'move', dir: -1 });
  if (input === '/') return to({ mode: 'filter', filterBy: 'either' });
  if (input === '?') return to({ mode: 'help' });
  return to({}, { kind: 'none' });
}

/**
 * Whether an effect needs the whole queue read first (a filter, a bulk accept): while the session is still reading
 * the rest of its queue, such a key waits for it (the App says so on the status line) instead of reading it at once.
 */
export const needsWholeQueue = (effect: Effect): boolean => effect.kind === 'filter' || effect.kind === 'bulk-offer' || effect.kind === 'bulk';

/**
 * Runs an effect on the session: the snapshot to show after it (none for an effect that does not touch the
 * session) and the new status line (undefined keeps the one shown; 'quit' and 'none' do nothing here).
 */
export function applyEffect(session: ReviewSession, effect: Effect): { snapshot?: Snapshot; status: string | null | undefined } {
  const with_ = (snapshot: Snapshot, status: string | null | undefined = snapshot.status) => ({ snapshot, status });
  switch (effect.kind) {
    case 'decide':
      return with_(session.decide(effect.verdict, effect.label));
    case 'skip':
      return with_(session.skip());
    case 'undo':
      return with_(session.undo());
    case 'move':
      return with_(session.move(effect.dir));
    case 'filter': {
      const snap = session.setFilter(effect.filter);
      return with_(snap, effect.filter === null ? 'filter cleared' : (snap.status ?? undefined));
    }
    case 'flag-filter':
      try {
        const snap = session.setFlagFilter(effect.flag);
        return with_(snap, snap.status ?? undefined);
      } catch (e) {
        // No quality check stored for the dataset: say so, keep the filter shown.
        if (!isFerCleanError(e)) throw e;
        return with_(session.snapshot(), `filter: ${e.message}`);
      }
    case 'say':
      return { status: effect.status };
    case 'bulk-offer':
      // The confirmation page shows the snapshot's bulkOffer; a refusal (too few decisions) is the status line instead.
      return with_(session.offerBulk(effect.min));
    case 'bulk':
      try {
        return with_(session.bulkAccept(effect.min));
      } catch (e) {
        if (!isFerCleanError(e)) throw e;
        return with_(session.snapshot(), `bulk accept: ${e.message}`);
      }
    default:
      return { status: undefined };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// `review --duplicates`: the keys of the duplicate-group screen.

/** What the group screen's key handler remembers between keys. */
export interface GroupKeyState {
  mode: 'main' | 'help';
  /** The dataset's classes (keys 1-9 keep one for the group). */
  taxonomy: readonly string[];
}

export type GroupEffect =
  | { kind: 'none' }
  | { kind: 'redraw' }
  | { kind: 'quit' }
  | { kind: 'keep'; label: string }
  | { kind: 'different' }
  | { kind: 'undo' }
  | { kind: 'move'; dir: 1 | -1 }
  | { kind: 'say'; status: string };

export const initialGroupKeyState = (taxonomy: readonly string[]): GroupKeyState => ({ mode: 'main', taxonomy });

/**
 * One key on the group screen: 1-9 keep that class (the dataset's taxonomy order, as numbered on screen) for every
 * image of the group, d marks them as different faces, u undoes, ←/→ p/n move, ? help, q quit. Pure.
 */
export function handleGroupKey(state: GroupKeyState, key: KeyPress): { state: GroupKeyState; effect: GroupEffect } {
  const { input } = key;
  const K = state.taxonomy.length;
  const to = (s: Partial<GroupKeyState>, effect: GroupEffect = { kind: 'redraw' }) => ({ state: { ...state, ...s }, effect });
  if (state.mode === 'help') return to({ mode: 'main' });
  if (input === 'q') return to({}, { kind: 'quit' });
  const classKey = /^[1-9]$/.test(input) ? Number(input) : null;
  if (classKey !== null) {
    return classKey <= K
      ? to({}, { kind: 'keep', label: state.taxonomy[classKey - 1]! })
      : to({}, { kind: 'say', status: `no class ${classKey}: this dataset has ${K}` });
  }
  if (input === 'd') return to({}, { kind: 'different' });
  if (input === 'u') return to({}, { kind: 'undo' });
  if (key.rightArrow || input === 'n') return to({}, { kind: 'move', dir: 1 });
  if (key.leftArrow || input === 'p') return to({}, { kind: 'move', dir: -1 });
  if (input === '?') return to({ mode: 'help' });
  return to({}, { kind: 'none' });
}

/** Runs a group-screen effect on the session: the snapshot to show and the status line (undefined: keep it). */
export function applyGroupEffect(session: GroupSession, effect: GroupEffect): { snapshot?: GroupSnapshot; status: string | null | undefined } {
  const with_ = (snapshot: GroupSnapshot) => ({ snapshot, status: snapshot.status });
  switch (effect.kind) {
    case 'keep':
      return with_(session.keepLabel(effect.label));
    case 'different':
      return with_(session.differentFaces());
    case 'undo':
      return with_(session.undo());
    case 'move':
      return with_(session.move(effect.dir));
    case 'say':
      return { status: effect.status };
    default:
      return { status: undefined };
  }
}

// An escape sequence: CSI (ESC [ parameters intermediates final, also ESC [ [ A), SS3 (ESC O x), or ESC and one
// character other than ESC (Alt+key); a lone ESC is the Escape key.
const KEY = /\x1b\[\[?[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]|\x1bO[\x40-\x7e]|\x1b[^\x1b]?|[\s\S]/gu;

/** Cuts a chunk of terminal input into keys, in order: escape sequences whole, every other character on its own. */
export function splitKeys(chunk: string): string[] {
  return chunk.match(KEY) ?? [];
}

/** The key a sequence from splitKeys stands for. */
export function keyOf(seq: string): KeyPress {
  if (seq === '\r' || seq === '\n') return { input: '\r', return: true };
  if (seq === '\x1b') return { input: '', escape: true };
  if (seq === '\x1b[C' || seq === '\x1bOC') return { input: '', rightArrow: true };
  if (seq === '\x1b[D' || seq === '\x1bOD') return { input: '', leftArrow: true };
  if (seq.startsWith('\x1b')) return { input: '' }; // another named key or Alt+key: not bound in review
  return { input: seq };
}

/**
 * The keys of one input event from Ink. Ink reports a chunk of plain text (a key held down, a fast typist, a slow
 * link) as one input string; it is split here so that every key counts. A named key (Enter, Esc, an arrow) comes
 * alone and is taken as Ink parsed it.
 */
export function keysOfInput(input: string, key: Omit<KeyPress, 'input'> & { ctrl?: boolean; meta?: boolean }): KeyPress[] {
  const named = key.return || key.escape || key.leftArrow || key.rightArrow || key.ctrl || key.meta;
  if (named || [...input].length <= 1) return [{ ...key, input }];
  return splitKeys(input).map(keyOf);
}
