/** Issue 20: hostile input to the scripted review verbs (decide, accept, undo) and what the CLI echoes of it. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimImage } from '../src/review/domain/claims.js';
import { decisionsOfRun } from '../src/review/domain/decisions.js';
import { bulkAccept, decideFromCsv, nextItems, previewBulkAccept } from '../src/review/verbs.js';
import { printable } from '../src/printable.js';
import { cliRunner, fixture, useStore, useTempDir } from './helpers.js';
import { seedSynthetic, simulatedAction } from './learn-helpers.js';

const isRoot = process.getuid?.() === 0;

const t = useTempDir();
const s = useStore(t, (dir) => seedSynthetic(join(dir, 'r.db')));

const csv = (name: string, rows: string[][]): string => {
  const f = join(t.dir, name);
  writeFileSync(f, ['path,action,label', ...rows.map((r) => r.join(','))].join('\n') + '\n');
  return f;
};
const cli = cliRunner({ cwd: () => t.dir, db: () => join(t.dir, 'r.db') });
const written = (): number => decisionsOfRun(s.db, s.runId).length;

describe('issue 20 items 4, 13: decide reads labels as ingest does and checks them on every action', () => {
  it('a label on a rejected row must be the given label (any spelling); another one is refused by line', () => {
    const [a, b] = s.proposals; // a: given anger
    expect(() => decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: csv('r.csv', [[a!.path, 'rejected', 'fear']]) })).toThrow(
      `r.csv:2: label 'fear' on a rejected row: rejecting keeps the given label (anger); for another label write manual,fear; nothing was applied`,
    );
    expect(written()).toBe(0);
    const r = decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: csv('ok.csv', [[a!.path, 'rejected', 'Angry'], [b!.path, 'rejected', '']]) });
    expect(r.rejected).toBe(2);
  });

  it("manual takes the names and synonyms ingest takes ('happy', 'HAPPINESS'); an unknown word is refused", () => {
    const [a, b, c] = s.proposals;
    expect(() => decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: csv('bad.csv', [[c!.path, 'manual', 'pain']]) })).toThrow(
      /bad\.csv:2: unknown label 'pain' \(classes: anger, disgust, fear, happiness, sadness, surprise, neutral\)/,
    );
    const r = decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: csv('m.csv', [[a!.path, 'manual', 'happy'], [b!.path, 'manual', 'HAPPINESS']]) });
    expect(r.manual).toBe(2);
    expect(decisionsOfRun(s.db, s.runId).map((d) => d.new_label)).toEqual(['happiness', 'happiness']);
    // accepted with a synonym of the proposal (neutral) is the same proposal
    const n = s.proposals.find((p) => p.proposed === 'neutral' && p !== a && p !== b)!;
    expect(decideFromCsv(s.db, { runId: s.runId, annotator: 'ana', file: csv('acc.csv', [[n.path, 'accepted', 'Neutral']]) }).accepted).toBe(1);
  });

  it("--min-estimate and other numeric flags take decimal numbers only: '0x1' is not 1", async () => {
    for (const v of ['0x1', '0b1', 'Infinity']) {
      const r = await cli('accept', '--run', String(s.runId), '--annotator', 'ana', '--min-estimate', v, '--dry-run');
      expect(r.code).toBe(1);
      // the CLI parses the type (a decimal number); the range is the library's to check
      expect(r.stderr).toBe(`fer-clean accept: --min-estimate must be a number, got '${v}'\n`);
    }
    const r = await cli('decide', '--run', '0x1', '--annotator', 'ana', csv('x.csv', [[s.proposals[0]!.path, 'accepted', '']]));
    expect([r.code, r.stderr]).toEqual([1, "fer-clean decide: --run must be an integer >= 1, got '0x1'\n"]);
  });
});

describe('issue 20 item 5: accept against the same annotator’s own open review session', () => {
  it('takes the item that session holds, as the dry run said; another annotator’s lease is left alone', () => {
    const paths = new Map(s.proposals.map((p) => [p.path, p]));
    for (let k = 0; k < 4; k++) {
      const q = nextItems(s.db, { runId: s.runId, limit: 50, annotator: 'rev' });
      decideFromCsv(s.db, { runId: s.runId, annotator: 'rev', file: csv(`b${k}.csv`, q.items.map((it) => [it.path, ...Object.values(simulatedAction(paths.get(it.path)!))])) });
    }
    const top = nextItems(s.db, { runId: s.runId, limit: 2, annotator: 'rev' }).items;
    expect(claimImage(s.db, { runId: s.runId, sessionId: 'ink-rev', annotator: 'rev' }, top[0]!.imageId).ok).toBe(true);
    expect(claimImage(s.db, { runId: s.runId, sessionId: 'ink-bob', annotator: 'bob' }, top[1]!.imageId).ok).toBe(true);
    const min = Math.min(top[0]!.estimate, top[1]!.estimate);
    const preview = previewBulkAccept(s.db, { runId: s.runId, annotator: 'rev', minEstimate: min });
    const r = bulkAccept(s.db, { runId: s.runId, annotator: 'rev', minEstimate: min });
    expect([r.items, r.held]).toEqual([preview.items, preview.held]);
    expect(r.held).toBe(1);
    const accepted = new Set(decisionsOfRun(s.db, s.runId).filter((d) => d.bulk_id === r.bulkId).map((d) => d.image_id));
    expect(accepted.has(top[0]!.imageId)).toBe(true);
    expect(accepted.has(top[1]!.imageId)).toBe(false);
  });
});

describe('issue 20 item 7: decide’s error list is capped', () => {
  it('5,000 unknown paths print 50 lines and a count of the rest', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => [`nowhere/${i}.png`, 'accepted', '']);
    const r = await cli('decide', '--run', String(s.runId), '--annotator', 'ana', csv('many.csv', rows));
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('fer-clean decide: many.csv: 5000 problems; nothing was applied');
    expect(lines).toHaveLength(52);
    expect(lines[50]).toBe(`  many.csv:51: 'nowhere/49.png' is not a proposal of run ${s.runId}`);
    expect(lines[51]).toBe('  ... and 4950 more');
  });
});

describe('issue 20 item 6: nothing from data or arguments reaches the terminal raw', () => {
  const HOSTILE = '\x1b]0;PWNED\x07\x1b[2J';

  it('printable escapes every control character; with lines it keeps line feeds and tabs', () => {
    expect(printable(`a${HOSTILE}\r\n\tb\u009b\u202e`)).toBe('a\\u001b]0;PWNED\\u0007\\u001b[2J\\r\\n\\tb\\u009b\\u202e');
    expect(printable('x\ny\tz\x1b', { lines: true })).toBe('x\ny\tz\\u001b');
    const json = JSON.stringify({ p: 'a\u0085b' });
    expect(JSON.parse(printable(json))).toEqual({ p: 'a\u0085b' }); // escaped the JSON way: a JSON line stays valid
  });

  it('an annotator name with a newline or ESC is refused by every verb that writes it', async () => {
    for (const name of ['rev\nFAKE LINE', `rev${HOSTILE}`]) {
      for (const args of [
        ['decide', '--run', String(s.runId), csv('d.csv', [[s.proposals[0]!.path, 'accepted', '']])],
        ['accept', '--run', String(s.runId), '--min-estimate', '0.9'],
        ['undo', '--run', String(s.runId)],
        ['review', '--run', String(s.runId)],
      ]) {
        const r = await cli(...args, '--annotator', name);
        expect(r.code, args[0]).toBe(1);
        expect(r.stderr).toMatch(/annotator name 'rev\\(n|u001b)[^']*' holds a control character/);
        expect(r.stderr).not.toMatch(/[\x07\x1b]/);
      }
    }
    expect(() => decideFromCsv(s.db, { runId: s.runId, annotator: 'a\x1bb', file: csv('e.csv', [[s.proposals[0]!.path, 'accepted', '']]) })).toThrow(/control character/);
    expect(written()).toBe(0);
  });

  it('a CSV cell holding escape sequences is echoed escaped in decide’s and ingest’s errors', async () => {
    const d = await cli('decide', '--run', String(s.runId), '--annotator', 'ana', csv('h.csv', [[`x${HOSTILE}.png`, 'accepted', ''], ['y\bz.png', 'accepted', '']]));
    expect(d.code).toBe(1);
    expect(d.stderr).toContain(`h.csv:2: 'x\\u001b]0;PWNED\\u0007\\u001b[2J.png' is not a proposal of run ${s.runId}`);
    expect(d.stderr).toContain(`h.csv:3: 'y\\u0008z.png' is not a proposal`);
    expect(d.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);

    mkdirSync(join(t.dir, 'img'));
    writeFileSync(join(t.dir, 'l.csv'), `path,label\n"img/a${HOSTILE}\nb.png",happy\n${fixture('bad', 'images', 'fer0014103.png')},sad\n`);
    const i = await cli('ingest', join(t.dir, 'l.csv'), '--db', join(t.dir, 'i.db'));
    expect(i.code).toBe(1);
    expect(i.stderr).toContain('img/a\\u001b]0;PWNED\\u0007\\u001b[2J\\nb.png: image file not found');
    expect(i.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
  });
});

describe('issue 20 item 6: an error message is one line', () => {
  it('a quoted CSV cell holding a line feed cannot forge a second line of output; usage errors still print the usage', async () => {
    const f = join(t.dir, 'nl.csv');
    writeFileSync(f, 'path,action,label\n"a.png\nfer-clean decide: 0 problems, all applied",accepted,\n');
    const r = await cli('decide', '--run', String(s.runId), '--annotator', 'ana', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`fer-clean decide: nl.csv:3: 'a.png\\nfer-clean decide: 0 problems, all applied' is not a proposal of run ${s.runId}; nothing was applied\n`);
    const u = await cli('decide', '--annotator', 'ana');
    expect(u.stderr).toMatch(/^fer-clean decide: expected one CSV file, got 0\n\nusage: fer-clean decide/);
  });
});

describe('issue 20 item 14: decide given a device or a fifo as its CSV', () => {
  it('is refused by name at once, nothing applied', async () => {
    const files = [join(t.dir, 'fifo.csv')];
    execFileSync('mkfifo', [files[0]!]);
    if (isRoot) {
      files.push(join(t.dir, 'zero.csv'));
      execFileSync('mknod', [files[1]!, 'c', '1', '5']); // a private stand-in for /dev/zero
    }
    for (const f of files) {
      const r = await cli('decide', '--run', String(s.runId), '--annotator', 'ana', f);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/: is a (named pipe \(fifo\)|character device), not a regular file/);
    }
    expect(written()).toBe(0);
  });
});
