-- 009_group_decisions: review decisions on a duplicate group whose images carry different labels (issue 19).
-- A reviewer either keeps one label for the whole group (every image takes it: one 'manual' row per image in
-- `decisions`, naming this row, so export and training read it through effective_decisions like any decision), or
-- says the images are different faces (the group is settled, no label changes). Append-only like `decisions`: an
-- undo is a row of its own naming the row it undoes (and, for keep-label, one undo row in `decisions` per image).
-- The group is stored by its images, not by duplicate_groups.id: `fer-clean quality` renumbers groups on every check.
CREATE TABLE group_decisions (
  id          INTEGER PRIMARY KEY,
  dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  run_id      INTEGER REFERENCES runs(id) ON DELETE SET NULL,  -- the run reviewed when it was made (context only)
  annotator   TEXT NOT NULL,
  action      TEXT NOT NULL CHECK (action IN ('keep-label', 'different-faces', 'undo')),
  label       TEXT,                                          -- keep-label: the label kept; NULL otherwise
  undoes      INTEGER REFERENCES group_decisions(id),
  decided_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX group_decisions_undo_once ON group_decisions (undoes) WHERE undoes IS NOT NULL;
CREATE INDEX group_decisions_by_dataset ON group_decisions (dataset_id, id);

-- The images of the group as the reviewer saw it.
CREATE TABLE group_decision_images (
  decision_id  INTEGER NOT NULL REFERENCES group_decisions(id) ON DELETE CASCADE,
  image_id     INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  PRIMARY KEY (decision_id, image_id)
) WITHOUT ROWID;
CREATE INDEX group_decision_images_by_image ON group_decision_images (image_id);

-- The group decision that wrote a decisions row (keep-label); NULL for every other row.
ALTER TABLE decisions ADD COLUMN group_decision_id INTEGER REFERENCES group_decisions(id);
CREATE INDEX decisions_by_group ON decisions (group_decision_id) WHERE group_decision_id IS NOT NULL;
