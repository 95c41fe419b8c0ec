/** Issue 20 item 6 in the review screen: data from the database (paths, names) is shown escaped, never acted on. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { cleanup, render } from 'ink-testing-library';
import { App } from '../src/review/terminal/App.js';
import { ReviewSession } from '../src/review/session/session.js';
import { tempDir } from './helpers.js';
import { seedReviewDb, type Seeded } from './review-helpers.js';

const HOSTILE = '\x1b]0;PWNED\x07\x1b[2J';

describe('review App shows hostile data escaped', () => {
  let t: ReturnType<typeof tempDir>;
  let s: Seeded;
  let session: ReviewSession | undefined;
  beforeEach(() => {
    t = tempDir();
    s = seedReviewDb(join(t.dir, 'r.db'), { images: 3 });
  });
  afterEach(() => {
    cleanup();
    session?.close();
    s.db.close();
    t.cleanup();
  });

  it('a path and a dataset name holding ESC ] 0 ; ... BEL and ESC [ 2 J (stored by an older version) are printed as text', async () => {
    s.db.prepare(`UPDATE images SET path = ? WHERE id = ?`).run(`evil${HOSTILE}\nx.png`, s.images[0]!.imageId);
    s.db.prepare(`UPDATE datasets SET name = ?`).run(`ds${HOSTILE}`);
    session = ReviewSession.open(s.db, { annotator: 'alice', runId: s.runId }).start();
    const app = render(<App session={session} colorMode="none" />);
    const start = Date.now();
    let frame = '';
    while (Date.now() - start < 20_000) {
      frame = app.lastFrame() ?? '';
      if (frame.includes('evil\\u001b') && frame.includes('cannot draw')) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(frame).toContain('fer-clean review · ds\\u001b]0;PWNED\\u0007\\u001b[2J · run');
    expect(frame).toContain('evil\\u001b]0;PWNED\\u0007\\u001b[2J\\nx.png');
    expect(frame).not.toContain(']0;PWNED\x07');
    expect(frame).not.toContain('\x1b[2J');
  });

  it('an annotator name with a control character cannot open a session', () => {
    expect(() => ReviewSession.open(s.db, { annotator: 'ali\nce', runId: s.runId })).toThrow(/annotator name 'ali\\nce' holds a control character/);
  });
});
