import { formatDuration } from '../src/format.js';
import type { Io } from './io.js';

/** Rates are shown once this much time has passed since the first update (before that: '--/s'). */
const MIN_RATE_MS = 500;

/**
 * A one-line progress bar on standard error with rate and ETA. Redraws in place on a terminal (at most ~10 times
 * a second); elsewhere prints a plain line every 10%.
 *
 * The rate counts from the first update, not from when the bar was made: work arrives in chunks (ingest reports
 * 256 decoded images at once), so the first update's count over the few milliseconds since the bar was made would
 * read as hundreds of thousands per second.
 */
export class ProgressBar {
  private first: { at: number; count: number } | null = null;
  private lastDraw = 0;
  private lastDecile = -1;
  private done = false;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'images',
    /** Clock in ms (tests pass their own). */
    private readonly clock: () => number = Date.now,
  ) {}

  update(current: number): void {
    if (this.done) return;
    const now = this.clock();
    this.first ??= { at: now, count: current };
    const tty = Boolean(this.io.stderr.isTTY);
    if (tty) {
      if (now - this.lastDraw < 100 && current < this.total) return;
      this.lastDraw = now;
      this.io.stderr.write('\r' + this.render(current, now) + '\x1b[K');
    } else {
      const decile = this.total > 0 ? Math.floor((current / this.total) * 10) : 10;
      if (decile === this.lastDecile) return;
      this.lastDecile = decile;
      this.io.stderr.write(this.render(current, now) + '\n');
    }
  }

  finish(current = this.total): void {
    if (this.done) return;
    this.update(current);
    if (this.io.stderr.isTTY) this.io.stderr.write('\n');
    this.done = true;
  }

  render(current: number, now = this.clock()): string {
    const width = 24;
    const frac = this.total > 0 ? Math.min(1, current / this.total) : 1;
    const filled = Math.round(frac * width);
    const first = this.first ?? { at: now, count: current };
    const ms = now - first.at;
    const rate = ms >= MIN_RATE_MS ? ((current - first.count) * 1000) / ms : null;
    const eta = current >= this.total ? 0 : rate ? (this.total - current) / rate : Infinity;
    return (
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${current}/${this.total} ${this.unit}` +
      ` ${formatRate(rate)} ETA ${formatDuration(eta)}`
    );
  }
}

/** Units per second: '--/s' before a rate is known, '1024/s', '2.5/s', or for slow work (epochs) '1 per 19.4s'. */
export function formatRate(rate: number | null): string {
  if (rate === null || !Number.isFinite(rate)) return '--/s';
  if (rate >= 10) return `${rate.toFixed(0)}/s`;
  if (rate >= 1) return `${rate.toFixed(1)}/s`;
  return rate > 0 ? `1 per ${(1 / rate).toFixed(1)}s` : '0/s';
}
