/**
 * How far a review has got: the decisions in force on a run's proposals with their counts kept as they change, and
 * the progress figures shown under every item (Stats). Pure: the session feeds it what it read.
 */
import type { Effective } from './decisions.js';

/** The decisions in force on a run's proposals, by image, with counts by action kept as they change. */
export class InForce {
  private readonly map: Map<number, Effective>;
  readonly counts = { accepted: 0, rejected: 0, manual: 0 };
  constructor(entries: Map<number, Effective> = new Map()) {
    this.map = entries;
    for (const e of entries.values()) this.counts[e.action]++;
  }
  get(imageId: number): Effective | undefined {
    return this.map.get(imageId);
  }
  has(imageId: number): boolean {
    return this.map.has(imageId);
  }
  set(imageId: number, e: Effective): void {
    this.delete(imageId);
    this.map.set(imageId, e);
    this.counts[e.action]++;
  }
  delete(imageId: number): void {
    const old = this.map.get(imageId);
    if (!old) return;
    this.map.delete(imageId);
    this.counts[old.action]--;
  }
}

export interface Stats {
  /** Items in the queue (the run's proposals). */
  total: number;
  /** Items with a decision in force (any annotator). */
  reviewed: number;
  accepted: number;
  rejected: number;
  manual: number;
  /** Decisions made in this session (undone ones not counted). */
  sessionDecisions: number;
  /** Decisions per minute in this session. */
  ratePerMin: number;
  /** Seconds to review what is left at that rate; Infinity before the first decision. */
  etaSeconds: number;
  /** Items other sessions hold now. */
  heldByOthers: number;
  /** With a filter: items matching it and how many of those are reviewed. */
  filtered?: { total: number; reviewed: number };
}

/** The progress figures from the counts in force, this session's decisions and how long it has run (ms). */
export function statsOf(o: {
  total: number;
  inForce: InForce;
  sessionDecisions: number;
  elapsedMs: number;
  heldByOthers: number;
  filtered?: { total: number; reviewed: number };
}): Stats {
  const { accepted, rejected, manual } = o.inForce.counts;
  const reviewed = accepted + rejected + manual;
  const minutes = Math.max(1e-6, o.elapsedMs / 60_000);
  const ratePerMin = o.sessionDecisions / minutes;
  const left = o.total - reviewed;
  const s: Stats = {
    total: o.total,
    reviewed,
    accepted,
    rejected,
    manual,
    sessionDecisions: o.sessionDecisions,
    ratePerMin,
    etaSeconds: left === 0 ? 0 : ratePerMin > 0 ? (left / ratePerMin) * 60 : Infinity,
    heldByOthers: o.heldByOthers,
  };
  if (o.filtered) s.filtered = o.filtered;
  return s;
}
