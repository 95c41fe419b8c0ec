import { describe, expect, it } from 'vitest';
import { handleKey, initialKeyState, keyOf, keysOfInput, splitKeys, type KeyPress, type KeyState } from '../src/review/terminal/keys.js';

const TAX = ['neutral', 'happiness', 'surprise'];
const main = initialKeyState(TAX);
const k = (input: string, named: Partial<KeyPress> = {}): KeyPress => ({ input, ...named });

/** Feeds keys one by one, returning the effects and the final state. */
function feed(keys: KeyPress[], state: KeyState = main) {
  const effects = [];
  for (const key of keys) {
    const r = handleKey(state, key);
    state = r.state;
    effects.push(r.effect);
  }
  return { state, effects };
}

describe('handleKey (pure: state + key -> state + effect)', () => {
  it('main mode: decide, skip, undo, move, quit, and unbound keys do nothing', () => {
    expect(handleKey(main, k('a')).effect).toEqual({ kind: 'decide', verdict: 'accepted' });
    expect(handleKey(main, k('\r', { return: true })).effect).toEqual({ kind: 'decide', verdict: 'accepted' });
    expect(handleKey(main, k('r')).effect).toEqual({ kind: 'decide', verdict: 'rejected' });
    expect(handleKey(main, k('3')).effect).toEqual({ kind: 'decide', verdict: 'manual', label: 'surprise' });
    expect(handleKey(main, k('4')).effect).toEqual({ kind: 'say', status: 'no class 4: this dataset has 3' });
    expect(handleKey(main, k('s')).effect).toEqual({ kind: 'skip' });
    expect(handleKey(main, k('u')).effect).toEqual({ kind: 'undo' });
    expect(handleKey(main, k('n')).effect).toEqual({ kind: 'move', dir: 1 });
    expect(handleKey(main, k('', { rightArrow: true })).effect).toEqual({ kind: 'move', dir: 1 });
    expect(handleKey(main, k('p')).effect).toEqual({ kind: 'move', dir: -1 });
    expect(handleKey(main, k('', { leftArrow: true })).effect).toEqual({ kind: 'move', dir: -1 });
    expect(handleKey(main, k('q')).effect).toEqual({ kind: 'quit' });
    expect(handleKey(main, k('x'))).toEqual({ state: main, effect: { kind: 'none' } });
    expect(handleKey(main, k('aa')).effect).toEqual({ kind: 'none' }); // one key at a time: see keysOfInput
  });

  it('help: ? opens it, any key closes it and does nothing else', () => {
    const { state, effects } = feed([k('?'), k('a')]);
    expect(effects).toEqual([{ kind: 'redraw' }, { kind: 'redraw' }]);
    expect(state.mode).toBe('main');
  });

  it('filter: / then g|p picks the label, a digit filters, 0 clears, Esc leaves; other keys stay in the prompt', () => {
    let r = feed([k('/'), k('p'), k('x'), k('2')]);
    expect(r.effects).toEqual([{ kind: 'redraw' }, { kind: 'redraw' }, { kind: 'redraw' }, { kind: 'filter', filter: { by: 'proposed', cls: 'happiness' } }]);
    expect(r.state.mode).toBe('main');
    // A new prompt starts from 'either' again.
    r = feed([k('/'), k('1')], r.state);
    expect(r.effects[1]).toEqual({ kind: 'filter', filter: { by: 'either', cls: 'neutral' } });
    r = feed([k('/'), k('9'), k('0')]);
    expect(r.effects.slice(1)).toEqual([{ kind: 'redraw' }, { kind: 'filter', filter: null }]);
    r = feed([k('/'), k('', { escape: true }), k('a')]);
    expect(r.effects.at(-1)).toEqual({ kind: 'decide', verdict: 'accepted' });
  });
});

describe('keys arriving together', () => {
  it('splitKeys: every character, escape sequences whole', () => {
    expect(splitKeys('aa')).toEqual(['a', 'a']);
    expect(splitKeys('a\x1b[Cr\x1b[D2')).toEqual(['a', '\x1b[C', 'r', '\x1b[D', '2']);
    expect(splitKeys('\x1bOC\x1b[1;5C\x1b[[A')).toEqual(['\x1bOC', '\x1b[1;5C', '\x1b[[A']);
    expect(splitKeys('a\r\x1b')).toEqual(['a', '\r', '\x1b']);
    expect(splitKeys('é😀')).toEqual(['é', '😀']);
    expect(splitKeys('')).toEqual([]);
  });

  it('keyOf names Enter, Esc and the arrows; other sequences are unbound', () => {
    expect(splitKeys('\r\x1b\x1b[C\x1b[D\x1b[A').map(keyOf)).toEqual([
      { input: '\r', return: true },
      { input: '', escape: true },
      { input: '', rightArrow: true },
      { input: '', leftArrow: true },
      { input: '' },
    ]);
  });

  it("keysOfInput splits Ink's multi-key input and keeps a named key as Ink parsed it", () => {
    expect(keysOfInput('aa', {})).toEqual([k('a'), k('a')]);
    expect(keysOfInput('a', {})).toEqual([k('a')]);
    expect(keysOfInput('', { rightArrow: true })).toEqual([k('', { rightArrow: true })]);
    // Four presses of a in one chunk decide four items.
    const { effects } = feed(keysOfInput('aaaa', {}));
    expect(effects.filter((e) => e.kind === 'decide')).toHaveLength(4);
  });
});
