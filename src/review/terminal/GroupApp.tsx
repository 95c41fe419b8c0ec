/**
 * The duplicate-group screen (`fer-clean review --duplicates`): holds the GroupSession's latest snapshot in React
 * state and renders from it; keys go to the session through keys.ts (handleGroupKey, applyGroupEffect). The faces of
 * a group are drawn inside Ink's frame (they are small: several share the width).
 */
import { useRef, useState, type ReactElement } from 'react';
import { Box, Text, useApp, useInput } from 'ink';
import type { ColorMode } from './face.js';
import { groupHelpLines, groupLegendEntries } from './help.js';
import { applyGroupEffect, handleGroupKey, initialGroupKeyState, keysOfInput, type GroupKeyState } from './keys.js';
import type { GroupSession, GroupSnapshot } from '../session/groups.js';
import { computeGroupLayout } from './layout.js';
import { printable } from '../../printable.js';
import { useGroupFaces, useTerminalSize } from './hooks.js';
import { GroupView, groupProgressLine, Page, Screen } from './views.js';

export interface GroupAppProps {
  session: GroupSession;
  colorMode: ColorMode;
  /** The snapshot to show first (else the session's start()). */
  snapshot?: GroupSnapshot;
}

interface Ui {
  keys: GroupKeyState;
  status: string | null;
}

export function GroupApp({ session, colorMode, snapshot: opening }: GroupAppProps): ReactElement {
  const { exit } = useApp();
  const { cols, rows } = useTerminalSize();
  const [snap, setSnap] = useState<GroupSnapshot>(() => opening ?? session.start());
  // As in App: key state kept in a ref too, so that a key typed right after another sees the latest state.
  const ui = useRef<Ui>({ keys: initialGroupKeyState(session.taxonomy), status: null });
  const [{ keys, status: statusLine }, setUi] = useState<Ui>(ui.current);
  const taxonomy = session.taxonomy;
  const members = snap.shown?.item.members.length ?? 2;
  const layout = computeGroupLayout(cols, rows, members, groupLegendEntries(taxonomy.length));
  const faces = useGroupFaces(snap.shown?.files.slice(0, layout.faces) ?? [], layout.faceCols, layout.faceRows, colorMode);

  useInput((input, key) => {
    let next: GroupSnapshot | undefined;
    let changed = false;
    for (const k of keysOfInput(input, key)) {
      const { state, effect } = handleGroupKey(ui.current.keys, k);
      ui.current = { ...ui.current, keys: state };
      if (effect.kind === 'quit') {
        exit();
        return;
      }
      if (effect.kind === 'none') continue;
      changed = true;
      try {
        const r = applyGroupEffect(session, effect);
        if (r.snapshot) next = r.snapshot;
        if (r.status !== undefined) ui.current = { ...ui.current, status: r.status };
      } catch (e) {
        const code = String((e as { code?: unknown }).code ?? '');
        if (!code.startsWith('SQLITE_BUSY')) throw e;
        ui.current = { ...ui.current, status: `not saved, the database is busy (${printable((e as Error).message)}): press the key again` };
      }
    }
    if (!changed) return;
    if (next) setSnap(next);
    setUi(ui.current);
  });

  const header =
    `fer-clean review --duplicates · ${printable(session.run.dataset.name)} · ${printable(session.who.annotator)}` +
    (snap.shown ? ` · group ${snap.position.index}/${snap.position.of}` : '');

  let body: ReactElement;
  if (keys.mode === 'help') body = <Page lines={groupHelpLines(taxonomy)} width={layout.cols} rows={layout.bodyRows} />;
  else if (snap.counts.total === 0) {
    body = (
      <Box flexDirection="column" height={layout.bodyRows}>
        <Text bold>No duplicate group with disagreeing labels in {printable(session.run.dataset.name)}.</Text>
        <Text>(Groups come from `fer-clean quality`; run it after ingest and embed.) Press q to quit.</Text>
      </Box>
    );
  } else if (!snap.shown) {
    body = (
      <Box flexDirection="column" height={layout.bodyRows}>
        <Text bold>All {snap.counts.total} groups are settled.</Text>
        <Text>← or p to look at them again, u to undo your last group decision, q to quit.</Text>
      </Box>
    );
  } else body = <GroupView item={snap.shown.item} faces={faces} taxonomy={taxonomy} layout={layout} />;

  return (
    <Screen width={layout.cols} height={layout.height} header={header} progress={groupProgressLine(snap.counts, snap.sessionDecisions)} legend={layout.legend} status={printable(statusLine ?? '')}>
      {body}
    </Screen>
  );
}
