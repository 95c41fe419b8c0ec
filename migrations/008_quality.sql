-- 008_quality: data quality beyond labels (issue 19): near-duplicate groups and per-image quality flags, as the last
-- `fer-clean quality` found them. Each check of a dataset replaces its previous results in one transaction; nothing
-- here changes an image, a label or a decision.

-- One check of a dataset: when, on which embeddings, with which thresholds (JSON), over how many images.
CREATE TABLE quality_checks (
  dataset_id   INTEGER PRIMARY KEY REFERENCES datasets(id) ON DELETE CASCADE,
  backbone     TEXT,                        -- embeddings used for near-duplicates and outliers; NULL: none stored
  options      TEXT NOT NULL,               -- JSON of every threshold
  images       INTEGER NOT NULL,            -- images looked at
  seconds      REAL NOT NULL,
  checked_at   TEXT NOT NULL
);

-- Images that are the same picture: 'exact' = byte-identical files, 'near' = re-encoded, brightened, shifted or
-- re-cropped copies (embedding cosine and pixel correlation, thresholds in docs/QUALITY.md).
CREATE TABLE duplicate_groups (
  id                INTEGER PRIMARY KEY,
  dataset_id        INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  kind              TEXT NOT NULL CHECK (kind IN ('exact', 'near')),
  similarity        REAL NOT NULL,          -- lowest embedding cosine of the pairs that joined the group (1 for exact)
  pixel_similarity  REAL                    -- lowest aligned pixel correlation of those pairs; NULL for exact
);
CREATE INDEX duplicate_groups_by_dataset ON duplicate_groups (dataset_id);

CREATE TABLE duplicate_members (
  group_id   INTEGER NOT NULL REFERENCES duplicate_groups(id) ON DELETE CASCADE,
  image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, image_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX duplicate_members_by_image ON duplicate_members (image_id);

-- Quality flags: dark, light, blurry, low-information, non-face, outlier. score: the measured value the flag is
-- about (e.g. mean brightness 0..1 for dark; distance to the nearest class for outlier), detail: in words.
CREATE TABLE quality_flags (
  image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  flag       TEXT NOT NULL,
  score      REAL NOT NULL,
  detail     TEXT NOT NULL,
  PRIMARY KEY (image_id, flag)
) WITHOUT ROWID;
CREATE INDEX quality_flags_by_flag ON quality_flags (flag, image_id);
