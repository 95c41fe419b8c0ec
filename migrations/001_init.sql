-- 001_init: datasets, images, labels, embeddings, runs, per-image scores, review decisions.
-- Class labels are stored as canonical class names (see src/taxonomy.ts); each dataset keeps its
-- taxonomy (ordered class names) as a JSON array, and that order is the class index everywhere.

CREATE TABLE datasets (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  format      TEXT NOT NULL,               -- csv | imagefolder | rafdb | fer2013 | ferplus
  source      TEXT NOT NULL,               -- absolute path of what was ingested
  root        TEXT NOT NULL,               -- absolute folder that image paths are relative to
  taxonomy    TEXT NOT NULL,               -- JSON array of canonical class names, index = class id
  options     TEXT NOT NULL DEFAULT '{}',  -- JSON: ingest options needed to write the format back
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE images (
  id          INTEGER PRIMARY KEY,
  dataset_id  INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  path        TEXT NOT NULL,               -- relative to datasets.root, '/' separated
  sha256      TEXT NOT NULL,               -- of the file's bytes
  width       INTEGER NOT NULL,
  height      INTEGER NOT NULL,
  channels    INTEGER NOT NULL,
  split       TEXT NOT NULL DEFAULT 'train',
  source_line INTEGER,                     -- line (CSV, list) of the source it came from, if any
  source_row  TEXT,                        -- JSON of the source's CSV record, to write the format back
  UNIQUE (dataset_id, path)
);
CREATE INDEX images_by_hash ON images (dataset_id, sha256);
CREATE INDEX images_by_split ON images (dataset_id, split);

CREATE TABLE labels (
  image_id        INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
  given           TEXT NOT NULL,           -- the dataset's label (canonical class name)
  given_raw       TEXT NOT NULL,           -- the label as written in the source
  reference       TEXT,                    -- evaluation-only reference label (e.g. FER+ majority); NULL if none
  reference_votes TEXT                     -- JSON object of crowd votes when the source has them
);

CREATE TABLE embeddings (
  image_id          INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  backbone          TEXT NOT NULL,         -- backbone id, e.g. faceexpr
  backbone_version  TEXT NOT NULL,         -- package@version plus preprocessing revision
  dim               INTEGER NOT NULL,
  vector            BLOB NOT NULL,         -- float32 little-endian, dim values
  backend           TEXT NOT NULL,         -- tfjs backend that computed it
  created_at        TEXT NOT NULL,
  PRIMARY KEY (image_id, backbone, backbone_version)
) WITHOUT ROWID;

CREATE TABLE runs (
  id           INTEGER PRIMARY KEY,
  dataset_id   INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  method       TEXT NOT NULL,              -- scn | ce | cl
  backbone     TEXT NOT NULL,
  backend      TEXT NOT NULL,
  seed         INTEGER NOT NULL,
  noise_rate   REAL NOT NULL DEFAULT 0,    -- synthetic noise injected for this run only
  noise_type   TEXT,                       -- symmetric | asymmetric | NULL
  config       TEXT NOT NULL,              -- JSON of every hyper-parameter
  status       TEXT NOT NULL,              -- running | done | failed
  started_at   TEXT NOT NULL,
  finished_at  TEXT,
  duration_s   REAL,
  metrics      TEXT                        -- JSON summary written at the end
);

CREATE TABLE run_epochs (
  run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  epoch           INTEGER NOT NULL,
  loss            REAL NOT NULL,
  train_accuracy  REAL,
  val_accuracy    REAL,
  importance_gap  REAL,                    -- mean alpha of high group minus low group
  relabeled       INTEGER NOT NULL DEFAULT 0,
  duration_s      REAL NOT NULL,
  PRIMARY KEY (run_id, epoch)
);

-- Labels flipped by synthetic noise for one run (stored labels are never changed by training).
CREATE TABLE run_noise (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  original   TEXT NOT NULL,
  noisy      TEXT NOT NULL,
  PRIMARY KEY (run_id, image_id)
);

-- What a run says about each image it saw.
CREATE TABLE run_images (
  run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  image_id         INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  given_label      TEXT NOT NULL,          -- label the run was given (after synthetic noise)
  trained_label    TEXT NOT NULL,          -- label the run trained with at the end (after relabeling)
  in_training      INTEGER NOT NULL DEFAULT 0, -- 1 when the run trained on this image (train split, had a label)
  importance       REAL,                   -- final alpha (scn); NULL for methods without one
  importance_mean  REAL,                   -- mean alpha over the last epochs
  probs            TEXT NOT NULL,          -- JSON array of predicted probabilities, taxonomy order
  predicted_label  TEXT NOT NULL,
  proposed_label   TEXT,                   -- NULL when the run proposes no change
  proposal_margin  REAL,                   -- P(proposed) - P(given)
  PRIMARY KEY (run_id, image_id)
) WITHOUT ROWID;
CREATE INDEX run_images_proposals ON run_images (run_id, proposed_label);

-- Append-only audit trail of review decisions. An undo is a row of its own that names the row it undoes.
CREATE TABLE decisions (
  id              INTEGER PRIMARY KEY,
  run_id          INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  image_id        INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  annotator       TEXT NOT NULL,
  action          TEXT NOT NULL CHECK (action IN ('accepted', 'rejected', 'manual', 'skipped', 'undo')),
  previous_label  TEXT NOT NULL,           -- the label before this decision
  new_label       TEXT NOT NULL,           -- the label after it
  undoes          INTEGER REFERENCES decisions(id),
  decided_at      TEXT NOT NULL
);
CREATE INDEX decisions_by_image ON decisions (image_id, id);
CREATE INDEX decisions_by_run ON decisions (run_id, id);
CREATE UNIQUE INDEX decisions_undo_once ON decisions (undoes) WHERE undoes IS NOT NULL;

-- The decision in force for each image: its latest accepted/rejected/manual decision that was not undone.
CREATE VIEW effective_decisions AS
SELECT d.*
FROM decisions d
WHERE d.action IN ('accepted', 'rejected', 'manual')
  AND NOT EXISTS (SELECT 1 FROM decisions u WHERE u.undoes = d.id)
  AND d.id = (
    SELECT max(d2.id) FROM decisions d2
    WHERE d2.image_id = d.image_id
      AND d2.action IN ('accepted', 'rejected', 'manual')
      AND NOT EXISTS (SELECT 1 FROM decisions u2 WHERE u2.undoes = d2.id)
  );

-- Review leases: an item is claimed by one session at a time; an expired lease can be taken over.
CREATE TABLE claims (
  run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  session_id  TEXT NOT NULL,
  annotator   TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,            -- unix milliseconds
  PRIMARY KEY (run_id, image_id)
) WITHOUT ROWID;
