import { userInfo } from 'node:os';
import type { ReactElement } from 'react';
import type { Command } from '../command.js';
import { err, out, type Io } from '../io.js';
import { FerCleanError } from '../../src/errors.js';
import { annotatorName } from '../../src/printable.js';
import { COLOR_MODES, detectColorMode, renderFace, type ColorMode } from '../../src/review/terminal/face.js';
import { QUEUE_ORDERS, type QueueOrder } from '../../src/review/verbs.js';
import { ReviewSession } from '../../src/review/session/session.js';
import { GroupSession } from '../../src/review/session/groups.js';
import { groupCounts, loadGroupItems } from '../../src/review/domain/groups.js';
import type { DB } from '../../src/store/db.js';
import { choiceFlag, openExisting, parseIntFlag } from './shared.js';

const usage = `usage: fer-clean review [--run ID] [--dataset NAME] [--annotator NAME] [--order estimate|margin|importance|class]
                        [--duplicates] [--color auto|truecolor|256|none] [--db PATH]

Full-screen review of the labels a run proposes to change: accept, reject or set each by hand.
Every decision is saved when the key is pressed; run it again to resume at the first undecided item.
Several annotators can review the same run at once (each item is leased to one session).

  --run ID          run to review (default: the dataset's latest finished run)
  --dataset NAME    dataset whose latest finished run to review (needed when the database holds several
                    and no --run is given; with --run: must be the run's dataset)
  --annotator NAME  who is deciding, written to the audit trail (default: FER_CLEAN_ANNOTATOR, else your login)
  --order ORDER     estimate (default: highest estimated P(accept) first, refitted every few decisions, with
                    exploration), margin (largest margin first), importance (least important first),
                    class (by given class, then margin)
  --duplicates      review the duplicate groups whose labels disagree (from \`fer-clean quality\`) instead:
                    keep one label for the whole group (1-9) or mark its images as different faces (d)
  --color MODE      how faces are drawn: truecolor, 256 (grey ramp), none (characters); default auto
  --db PATH         database (default ./fer-clean.db or FER_CLEAN_DB)

Keys: a/Enter accept, r reject, 1-7 (8) set label, s skip, u undo, b bulk accept, ←/→ or p/n move, / filter
(f: a quality flag), ? help, q quit. With --duplicates: 1-7 (8) keep label, d different faces, u undo, ←/→ move.`;

export const reviewCommand: Command = {
  name: 'review',
  usage,
  options: {
    run: { type: 'string' },
    dataset: { type: 'string' },
    annotator: { type: 'string' },
    order: { type: 'string' },
    color: { type: 'string' },
    duplicates: { type: 'boolean' },
  },
  async run({ values }, io) {
    // React's production build (faster), and the UI's modules loaded only by this command, while the database is
    // being opened.
    io.env['NODE_ENV'] ??= 'production';
    // Ink draws only the last frame when it believes it runs in CI (is-in-ci reads CI when Ink is imported). Review
    // is interactive by definition, so this process is not "in CI" whatever the environment says.
    if (io.stdin.isTTY && io.stdout.isTTY) {
      delete io.env['CI'];
      delete io.env['CONTINUOUS_INTEGRATION'];
    }
    const ui = Promise.all([import('react'), import('ink'), import('../../src/review/terminal/App.js'), import('../../src/review/terminal/overlay.js')]);
    ui.catch(() => undefined);
    const runId = parseIntFlag(values['run'], '--run');
    // The order is ReviewSession.open's to check (told back as --order).
    const order = (values['order'] ?? 'estimate') as QueueOrder;
    const color = choiceFlag(values['color'], '--color', ['auto', ...COLOR_MODES] as const) ?? 'auto';
    const annotator = String(values['annotator'] ?? io.env['FER_CLEAN_ANNOTATOR'] ?? loginName(io.env)).trim();
    if (!annotator) throw new FerCleanError('cannot tell who is reviewing: pass --annotator NAME');
    annotatorName(annotator); // no control characters in a name the audit trail and every screen will show

    const db = openExisting(values, io);
    if (values['duplicates']) {
      try {
        return await reviewGroups(db, values, annotator, color, io);
      } finally {
        db.close();
      }
    }
    try {
      const session = ReviewSession.open(db, {
        runId,
        dataset: values['dataset'] as string | undefined,
        annotator,
        order,
      });
      if (session.total === 0) {
        out(io, `Nothing to review: run ${session.run.id} (${session.run.dataset.name}) proposes no relabels.`);
        return 0;
      }
      requireTerminal(io);
      const colorMode: ColorMode = color === 'auto' ? detectColorMode(io.env) : color;
      session.start();
      const stdout = io.stdout as NodeJS.WriteStream;
      // The first face is drawn (sharp, off the main thread) while the UI modules load.
      const { computeLayout, faceKey } = await import('../../src/review/terminal/layout.js');
      const faces = new Map<string, string[]>();
      const opening = session.snapshot();
      const first = opening.shown;
      const layout = computeLayout(stdout.columns || 80, stdout.rows || 24, session.taxonomy.length);
      const firstFace = first
        ? renderFace(first.detail.file, layout.faceCols, layout.faceRows, colorMode, first.detail.box)
            .then((lines) => void faces.set(faceKey(first.item.imageId, layout, colorMode), lines))
            .catch(() => undefined)
        : undefined;
      const [{ createElement }, { render }, { App }, { FaceOverlay }] = await ui;
      await firstFace;
      let faceSink: InstanceType<typeof FaceOverlay> | undefined;
      await fullScreen(
        io,
        render,
        () => createElement(App, { session, colorMode, faces, faceSink: (faceSink = new FaceOverlay(stdout)), snapshot: opening }),
        () => {
          faceSink?.dispose();
          session.close();
        },
      );
      const s = session.stats();
      out(
        io,
        `run ${session.run.id}: ${s.reviewed}/${s.total} reviewed (${s.accepted} accepted, ${s.rejected} rejected, ` +
          `${s.manual} manual); ${s.sessionDecisions} decision(s) by ${annotator} in this session`,
      );
      if (s.reviewed < s.total) err(io, `${s.total - s.reviewed} left: run \`fer-clean review\` again to go on.`);
      const groups = groupCounts(loadGroupItems(db, session.run.dataset.id)).open;
      if (groups > 0) err(io, `${groups} duplicate group(s) whose labels disagree: \`fer-clean review --duplicates\` settles them.`);
      return 0;
    } finally {
      db.close();
    }
  },
};

/** `review --duplicates`: the duplicate groups whose labels disagree, on the GroupApp screen. */
async function reviewGroups(
  db: DB,
  values: Record<string, unknown>,
  annotator: string,
  color: ColorMode | 'auto',
  io: Io,
): Promise<number> {
  if (values['order'] !== undefined) throw new FerCleanError('--order does not apply to --duplicates (groups come largest first)');
  const session = GroupSession.open(db, { runId: parseIntFlag(values['run'], '--run'), dataset: values['dataset'] as string | undefined, annotator });
  if (session.total === 0) {
    out(io, `Nothing to review: dataset ${session.run.dataset.name} has no duplicate group with disagreeing labels (run \`fer-clean quality\` to look for them).`);
    return 0;
  }
  requireTerminal(io);
  const colorMode: ColorMode = color === 'auto' ? detectColorMode(io.env) : color;
  const [{ createElement }, { render }, { GroupApp }] = await Promise.all([import('react'), import('ink'), import('../../src/review/terminal/GroupApp.js')]);
  await fullScreen(io, render, () => createElement(GroupApp, { session, colorMode, snapshot: session.start() }));
  const c = session.snapshot().counts;
  out(io, `dataset ${session.run.dataset.name}: ${c.total - c.open}/${c.total} duplicate groups settled (${c.kept} one label, ${c.different} different faces)`);
  if (c.open > 0) err(io, `${c.open} left: run \`fer-clean review --duplicates\` again to go on.`);
  return 0;
}

function loginName(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env['USER'] ?? env['LOGNAME'] ?? '';
  }
}

/** review is interactive: both ends must be a terminal. */
function requireTerminal(io: Io): void {
  const stdin = io.stdin as NodeJS.ReadStream;
  if (!stdin.isTTY || !io.stdout.isTTY) {
    throw new FerCleanError(
      'review is interactive and needs a terminal: run it in a terminal, not with piped input or output ' +
        `(stdin is ${stdin.isTTY ? '' : 'not '}a TTY, stdout is ${io.stdout.isTTY ? '' : 'not '}a TTY)`,
    );
  }
}

/**
 * Runs a review screen full screen until it exits: the terminal's alternate screen, left again on exit (also when
 * quitting with Ctrl-C). `element` is made once the alternate screen is on (the face overlay paints onto it);
 * `atExit` runs before the screen is left.
 */
async function fullScreen(io: Io, render: typeof import('ink').render, element: () => ReactElement, atExit: () => void = () => undefined): Promise<void> {
  const stdout = io.stdout as NodeJS.WriteStream;
  stdout.write('\x1b[?1049h\x1b[H');
  const restore = () => void stdout.write('\x1b[?1049l');
  const cancelRestore = io.onExit(restore);
  try {
    const ink = render(element(), {
      stdout,
      stdin: io.stdin as NodeJS.ReadStream,
      stderr: io.stderr as NodeJS.WriteStream,
      exitOnCtrlC: true,
      patchConsole: false,
      maxFps: 60,
      // Not incrementalRendering: in Ink 6.8 it draws every frame after the first one row too low when the frame
      // ends with a newline (as ours does, being one line shorter than the terminal).
    });
    await ink.waitUntilExit();
  } finally {
    atExit();
    restore();
    cancelRestore();
  }
}
