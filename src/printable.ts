/**
 * Text from data or arguments (file paths, CSV cells, annotator and dataset names, error messages quoting them) made
 * safe to show on a terminal. The library returns such text as it is; whatever prints it (the CLI's out/err, the
 * Ink review screen) passes it through `printable` once, at the point of printing.
 */
import { FerCleanError } from './errors.js';

/**
 * Characters a terminal acts on instead of showing: C0 controls (ESC starts escape sequences that set the title or
 * clear the screen, BEL, CR rewrites the line, BS), DEL, C1 controls (U+009B is a one-byte CSI), and the Unicode
 * bidirectional overrides and line separators that reorder or break what is shown.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, keeping line feeds and tabs (for text whose lines are meant: messages, usage). */
const CONTROL_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` with every control character shown escaped: `\n`, `\r`, `\t`, else `\u001b` style (JSON's own escapes,
 * so a JSON document stays valid and means the same). With `lines`, line feeds and tabs are kept (a message of
 * several lines); without, one line of data stays one line.
 */
export function printable(text: string, opts: { lines?: boolean } = {}): string {
  return text.replace(opts.lines ? CONTROL_BUT_LINES : CONTROL, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Whether `text` holds a character printable() would escape (line feeds and tabs included). */
export const hasControl = (text: string): boolean => new RegExp(CONTROL.source).test(text);

/**
 * An annotator's name as written to the audit trail: trimmed, not empty, no control characters (a newline or ESC in
 * a name would break every screen and listing that shows it). Throws a FerCleanError saying what is wrong.
 */
export function annotatorName(raw: string): string {
  const name = raw.trim();
  if (!name) throw new FerCleanError('annotator name is empty: pass --annotator NAME');
  if (hasControl(name)) {
    throw new FerCleanError(`annotator name '${printable(name)}' holds a control character: use letters, digits, spaces and punctuation`);
  }
  return name;
}
