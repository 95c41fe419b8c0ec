/**
 * Paints the face straight onto the terminal, beside Ink's frame instead of inside it.
 *
 * Why: Ink re-parses every line of its frame through an ANSI tokenizer (grapheme segmentation of every byte, escape
 * sequences included) on every render. A truecolor face is ~40 bytes of escapes per cell, so a 36x18 face alone
 * costs ~80 ms per key press on the benchmark machine and a 86x43 one ~400 ms (docs/BENCHMARKS.md). With the overlay,
 * Ink lays out an empty box where the face goes and this class writes the face's lines at that box's screen position
 * (absolute cursor moves between save/restore cursor, so Ink's own cursor bookkeeping is untouched) after each of
 * Ink's writes, since a line Ink rewrites erases the part of the face on it.
 *
 * Only for a real terminal whose screen starts with Ink's frame at its top-left (the review command switches to the
 * alternate screen and homes the cursor before rendering); tests without a terminal draw the face inside Ink.
 */
export interface FaceSink {
  /** Shows `lines` with its top-left cell at 0-based (row, col), or hides the face (null). */
  show(lines: string[] | null, row: number, col: number): void;
}

type Write = NodeJS.WriteStream['write'];

export class FaceOverlay implements FaceSink {
  private lines: string[] | null = null;
  private row = 0;
  private col = 0;
  private painted: { row: number; col: number; width: number; height: number } | null = null;
  private pending = false;
  private readonly realWrite: Write;

  constructor(
    private readonly out: NodeJS.WriteStream,
    /** Visible width of a face line (cells). */
    private readonly widthOf: (line: string) => number = (l) => l.replace(/\x1b\[[0-9;]*m/g, '').length,
  ) {
    this.realWrite = out.write;
    const self = this;
    // Every write of Ink's is followed (once per tick) by a repaint of the face.
    out.write = function (this: NodeJS.WriteStream, ...args: Parameters<Write>): boolean {
      const ok = self.realWrite.apply(out, args);
      self.schedule();
      return ok;
    } as Write;
  }

  show(lines: string[] | null, row: number, col: number): void {
    const width = lines ? Math.max(0, ...lines.map(this.widthOf)) : 0;
    const rect = lines ? { row, col, width, height: lines.length } : null;
    const p = this.painted;
    if (p && (!rect || p.row !== rect.row || p.col !== rect.col || p.width !== rect.width || p.height !== rect.height)) {
      this.erase(p);
    }
    const changed = lines !== this.lines || row !== this.row || col !== this.col;
    this.lines = lines;
    this.row = row;
    this.col = col;
    this.painted = rect;
    // Painted once Ink has written the frame being rendered (Ink writes it in the same tick, erasing its lines).
    if (changed && lines) this.schedule();
  }

  /** Puts stdout's write back; the face stays on screen until the screen is left. */
  dispose(): void {
    this.out.write = this.realWrite;
    this.lines = null;
  }

  private schedule(): void {
    if (this.pending || !this.lines) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      this.paint();
    });
  }

  private paint(): void {
    if (!this.lines) return;
    let s = '\x1b7';
    this.lines.forEach((line, i) => (s += `\x1b[${this.row + i + 1};${this.col + 1}H${line}\x1b[0m`));
    this.realWrite.call(this.out, s + '\x1b8');
  }

  private erase(r: { row: number; col: number; width: number; height: number }): void {
    let s = '\x1b7\x1b[0m';
    for (let i = 0; i < r.height; i++) s += `\x1b[${r.row + i + 1};${r.col + 1}H${' '.repeat(r.width)}`;
    this.realWrite.call(this.out, s + '\x1b8');
  }
}
