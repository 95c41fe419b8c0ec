-- 006_pixels_changed: when a re-ingest last found new bytes at an image's path (NULL: never).
-- The re-ingest drops the image's detected face box and its embeddings (they describe the old picture); report
-- counts the images of a run whose pixels changed after the run started.

ALTER TABLE images ADD COLUMN pixels_changed_at TEXT;
