-- 003_review_learning: the estimate shown with each decision, and bulk accepts in the audit trail (issue 8).

-- One bulk action: every undecided proposal of a run whose estimate was at or above min_estimate, accepted at once.
-- Each accepted item is a decisions row of its own naming this row (decisions.bulk_id); one undo reverts them all.
CREATE TABLE bulk_actions (
  id               INTEGER PRIMARY KEY,
  run_id           INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  annotator        TEXT NOT NULL,
  rule             TEXT NOT NULL,            -- human-readable, e.g. 'accept every undecided proposal with estimate >= 0.95'
  min_estimate     REAL NOT NULL,
  items            INTEGER NOT NULL,         -- decisions written
  expected_wrong   REAL NOT NULL,            -- sum of (1 - estimate) over them
  fitted_on        INTEGER NOT NULL,         -- reviewer decisions the estimate was fitted on
  decided_at       TEXT NOT NULL
);

-- Estimated probability that a reviewer accepts the proposal, as shown when the decision was made (NULL: unknown).
ALTER TABLE decisions ADD COLUMN estimate REAL;
-- The bulk action that wrote this decision; NULL for a decision made item by item.
ALTER TABLE decisions ADD COLUMN bulk_id INTEGER REFERENCES bulk_actions(id);
CREATE INDEX decisions_by_bulk ON decisions (bulk_id) WHERE bulk_id IS NOT NULL;
