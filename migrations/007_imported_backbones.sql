-- 007_imported_backbones: embeddings a user brought from their own model (`fer-clean embed --from FILE`).
-- One row per (dataset, name): the rows themselves live in embeddings with backbone = name and backbone_version =
-- version (the imported file's hash), so `train --backbone NAME` loads them like a built-in backbone's.
CREATE TABLE imported_backbones (
  dataset_id   INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,             -- backbone id used by train --backbone
  version      TEXT NOT NULL,             -- sha256 of the imported file (first 16 hex digits)
  dim          INTEGER NOT NULL,
  source       TEXT NOT NULL,             -- absolute path of the imported file (and of --paths, if any)
  rows         INTEGER NOT NULL,          -- embeddings written
  imported_at  TEXT NOT NULL,
  PRIMARY KEY (dataset_id, name)
);
