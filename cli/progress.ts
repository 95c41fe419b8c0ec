import { formatDuration } from '../src/format.js';
import type { Io } from './io.js';

/**
 * A one-line progress bar on standard error with rate and ETA. Redraws in place on a terminal (at most ~10 times
 * a second); elsewhere prints a plain line every 10%.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private done = false;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'images',
  ) {}

  update(current: number): void {
    if (this.done) return;
    const now = Date.now();
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

  render(current: number, now = Date.now()): string {
    const width = 24;
    const frac = this.total > 0 ? Math.min(1, current / this.total) : 1;
    const filled = Math.round(frac * width);
    const secs = Math.max(1e-3, (now - this.started) / 1000);
    const rate = current / secs;
    const eta = rate > 0 ? (this.total - current) / rate : Infinity;
    return (
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${current}/${this.total} ${this.unit}` +
      ` ${rate.toFixed(0)}/s ETA ${formatDuration(eta)}`
    );
  }
}
