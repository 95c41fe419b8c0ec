/**
 * `fer-clean review --duplicates`: one annotator's review of the duplicate groups whose labels disagree, as a cursor
 * over the groups (domain/groups.ts). Every action writes to SQLite first (one IMMEDIATE transaction) and returns an
 * immutable GroupSnapshot; the list is re-read after each write, so decisions made elsewhere (another session, the
 * proposal review) show. Nothing here prints.
 */
import type { DB } from '../../store/db.js';
import type { ResolvedRun } from '../../store/runs.js';
import type { FaceBox } from '../../features/facebox.js';
import { checkAnnotator } from '../domain/options.js';
import { reviewRun } from '../domain/proposals.js';
import {
  groupCounts,
  groupKey,
  loadGroupItems,
  memberFiles,
  nextOpenGroup,
  recordGroupDecision,
  undoLastGroupDecision,
  type GroupDecider,
  type GroupItem,
} from '../domain/groups.js';

export interface GroupSessionOptions {
  runId?: number;
  dataset?: string;
  annotator: string;
  /** Clock in unix ms. */
  now?: () => number;
}

/** The group shown, with where its images are (to draw them). */
export interface ShownGroup {
  item: GroupItem;
  files: { imageId: number; file: string; box: FaceBox | null }[];
}

/** What the screen shows after an action: never changed afterwards. */
export interface GroupSnapshot {
  version: number;
  shown?: ShownGroup;
  position: { index: number; of: number };
  counts: { total: number; open: number; kept: number; different: number };
  /** Group decisions made in this session (undos take them back). */
  sessionDecisions: number;
  status: string | null;
}

export class GroupSession {
  readonly who: GroupDecider;
  readonly taxonomy: string[];
  private items: GroupItem[] = [];
  private pos: number | null = null;
  private version = 0;
  private decisions = 0;
  private readonly now: () => number;

  private constructor(
    readonly db: DB,
    readonly run: ResolvedRun,
    opts: GroupSessionOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.who = { annotator: opts.annotator, datasetId: run.dataset.id, runId: run.id };
    this.taxonomy = run.dataset.taxonomy;
    this.items = loadGroupItems(db, run.dataset.id);
  }

  /** Opens the groups of the run's dataset (the run: by id, else the dataset's latest finished run). */
  static open(db: DB, opts: GroupSessionOptions): GroupSession {
    checkAnnotator(opts.annotator);
    return new GroupSession(db, reviewRun(db, opts.runId, opts.dataset), opts);
  }

  /** Groups in the review (settled ones included). */
  get total(): number {
    return this.items.length;
  }

  /** Goes to the first group that needs a decision. */
  start(): GroupSnapshot {
    this.pos = nextOpenGroup(this.items, -1);
    return this.snapshot();
  }

  snapshot(status: string | null = null): GroupSnapshot {
    const item = this.pos === null ? undefined : this.items[this.pos];
    const shown = item ? Object.freeze({ item, files: memberFiles(this.db, this.run.dataset, item.members) }) : undefined;
    return Object.freeze({
      version: ++this.version,
      ...(shown ? { shown } : {}),
      position: { index: this.pos === null ? 0 : this.pos + 1, of: this.items.length },
      counts: groupCounts(this.items),
      sessionDecisions: this.decisions,
      status,
    });
  }

  /** Keeps `label` (one of the dataset's classes) for every image of the group shown; then the next open group. */
  keepLabel(label: string): GroupSnapshot {
    return this.decide('keep-label', label);
  }

  /** Marks the images of the group shown as different faces (no label changes); then the next open group. */
  differentFaces(): GroupSnapshot {
    return this.decide('different-faces');
  }

  private decide(action: 'keep-label' | 'different-faces', label?: string): GroupSnapshot {
    const item = this.pos === null ? undefined : this.items[this.pos];
    if (!item) return this.snapshot('no group shown: nothing to decide');
    if (label !== undefined && !this.taxonomy.includes(label)) return this.snapshot(`no class ${label} in this dataset`);
    recordGroupDecision(
      this.db,
      this.who,
      item.members.map((m) => m.imageId),
      action,
      label,
      { now: this.now(), taxonomy: this.taxonomy },
    );
    this.decisions++;
    const at = this.pos!;
    this.reload(groupKey(item.members));
    const next = nextOpenGroup(this.items, this.pos ?? at);
    const said = action === 'keep-label' ? `kept ${label} for ${item.members.length} images` : `${item.members.length} images marked as different faces`;
    if (next !== null) this.pos = next;
    return this.snapshot(next === null ? `${said}; no group left to decide` : said);
  }

  /** Undoes this annotator's latest group decision in the dataset and shows that group again. */
  undo(): GroupSnapshot {
    const r = undoLastGroupDecision(this.db, this.who, { now: this.now() });
    if (!r) return this.snapshot('nothing to undo');
    this.decisions = Math.max(0, this.decisions - 1);
    this.reload(r.images.join(','));
    const what = r.undone.action === 'keep-label' ? `kept ${r.undone.label}` : 'different faces';
    return this.snapshot(`undone: ${what}`);
  }

  /** Previous / next group, settled ones included. */
  move(dir: 1 | -1): GroupSnapshot {
    if (this.items.length === 0) return this.snapshot('no duplicate group with disagreeing labels');
    if (this.pos === null) {
      this.pos = dir === 1 ? 0 : this.items.length - 1;
      return this.snapshot();
    }
    const p = this.pos + dir;
    if (p < 0 || p >= this.items.length) return this.snapshot(dir === 1 ? 'last group' : 'first group');
    this.pos = p;
    return this.snapshot();
  }

  /** Re-reads the groups; shows the group whose images are `key` (else keeps the place). */
  private reload(key: string): void {
    const at = this.pos;
    this.items = loadGroupItems(this.db, this.run.dataset.id);
    const found = this.items.findIndex((it) => groupKey(it.members) === key);
    this.pos = found >= 0 ? found : at === null || this.items.length === 0 ? null : Math.min(at, this.items.length - 1);
  }
}
