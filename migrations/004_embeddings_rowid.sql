-- 004_embeddings_rowid: embeddings in an ordinary rowid table.
-- As a WITHOUT ROWID table each 1 KB vector spilled to an overflow page (a WITHOUT ROWID row should stay well under
-- a page): at 100k images the table took 446 MB of which 340 MB unused, 4.4 GB at 1M. The same rows with a rowid and
-- a unique index take 134 MB and load and insert about 1.8x faster (docs/BENCHMARKS.md, scale). Same columns, same key.

CREATE TABLE embeddings_new (
  id                INTEGER PRIMARY KEY,
  image_id          INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  backbone          TEXT NOT NULL,         -- backbone id, e.g. faceexpr
  backbone_version  TEXT NOT NULL,         -- package@version plus preprocessing revision
  dim               INTEGER NOT NULL,
  vector            BLOB NOT NULL,         -- float32 little-endian, dim values
  backend           TEXT NOT NULL,         -- engine that computed it (onnxruntime, wasm, ...)
  created_at        TEXT NOT NULL,
  UNIQUE (image_id, backbone, backbone_version)
);
INSERT INTO embeddings_new (image_id, backbone, backbone_version, dim, vector, backend, created_at)
  SELECT image_id, backbone, backbone_version, dim, vector, backend, created_at FROM embeddings ORDER BY image_id, backbone, backbone_version;
DROP TABLE embeddings;
ALTER TABLE embeddings_new RENAME TO embeddings;
