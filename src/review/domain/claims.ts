import type { DB } from '../../store/db.js';

/**
 * Review leases. A session claims the item it shows in `claims` until `expires_at` (unix ms), renewing while it
 * shows it; other sessions skip items claimed by someone else with an unexpired lease. A dead session's lease simply
 * expires and the item can be taken again. Every change runs in an IMMEDIATE transaction, so two sessions racing for
 * the same item serialise on SQLite's write lock and exactly one wins.
 */

/** How long a claim lasts without renewal. */
export const LEASE_MS = 2 * 60_000;

export interface Claimant {
  runId: number;
  sessionId: string;
  annotator: string;
}

export type ClaimResult = { ok: true } | { ok: false; holder: string; expiresAt: number };

interface ClaimRow {
  session_id: string;
  annotator: string;
  expires_at: number;
}

/**
 * Takes or renews the claim on one image, unless another session holds an unexpired one. With `takeOwn`, a claim of
 * another session of the same annotator is taken over (a bulk accept by the annotator whose review session is open).
 * Does no transaction of its own: call it inside one (claimImage, or a decision's transaction).
 */
export function takeClaim(db: DB, who: Claimant, imageId: number, now: number, leaseMs = LEASE_MS, takeOwn = false): ClaimResult {
  const held = db
    .prepare(`SELECT session_id, annotator, expires_at FROM claims WHERE run_id = ? AND image_id = ?`)
    .get(who.runId, imageId) as ClaimRow | undefined;
  if (held && held.session_id !== who.sessionId && held.expires_at > now && !(takeOwn && held.annotator === who.annotator)) {
    return { ok: false, holder: held.annotator, expiresAt: held.expires_at };
  }
  db.prepare(
    `INSERT INTO claims (run_id, image_id, session_id, annotator, expires_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (run_id, image_id) DO UPDATE SET session_id = excluded.session_id, annotator = excluded.annotator,
       expires_at = excluded.expires_at`,
  ).run(who.runId, imageId, who.sessionId, who.annotator, now + leaseMs);
  return { ok: true };
}

/**
 * Claims `imageId` for this session and lets go of every other claim it holds (a session holds one item at a time),
 * atomically.
 */
export function claimImage(db: DB, who: Claimant, imageId: number, now = Date.now(), leaseMs = LEASE_MS): ClaimResult {
  return db
    .transaction((): ClaimResult => {
      const r = takeClaim(db, who, imageId, now, leaseMs);
      if (r.ok) {
        db.prepare(`DELETE FROM claims WHERE session_id = ? AND NOT (run_id = ? AND image_id = ?)`).run(
          who.sessionId,
          who.runId,
          imageId,
        );
      }
      return r;
    })
    .immediate();
}

/** Extends every claim this session holds. */
export function renewClaims(db: DB, sessionId: string, now = Date.now(), leaseMs = LEASE_MS): number {
  return db.prepare(`UPDATE claims SET expires_at = ? WHERE session_id = ?`).run(now + leaseMs, sessionId).changes;
}

/** Lets go of every claim this session holds (on quit). */
export function releaseClaims(db: DB, sessionId: string): number {
  return db.prepare(`DELETE FROM claims WHERE session_id = ?`).run(sessionId).changes;
}

/** Images of the run that other sessions hold right now, with who holds them. */
export function claimedByOthers(db: DB, runId: number, sessionId: string, now = Date.now()): Map<number, string> {
  const rows = db
    .prepare(`SELECT image_id, annotator FROM claims WHERE run_id = ? AND session_id != ? AND expires_at > ?`)
    .all(runId, sessionId, now) as { image_id: number; annotator: string }[];
  return new Map(rows.map((r) => [r.image_id, r.annotator]));
}
