-- 002_face_boxes: where the face is in each image, data-quality flags, and labels that cannot train.
-- Shared by the uncropped-photo work (face detection), AffectNet's annotated face boxes and the quality checks.

-- The face box used for embedding and review, in the source image's pixels; NULL = the whole image is the face.
ALTER TABLE images ADD COLUMN crop_x INTEGER;
ALTER TABLE images ADD COLUMN crop_y INTEGER;
ALTER TABLE images ADD COLUMN crop_w INTEGER;
ALTER TABLE images ADD COLUMN crop_h INTEGER;
-- Where the box came from: 'annotation' (given by the source, e.g. AffectNet's face_x..face_height) | 'detected'.
ALTER TABLE images ADD COLUMN crop_source TEXT;
-- A data-quality flag, NULL when none: e.g. 'no-face', 'several-faces', 'too-small'. Flagged images are listed by
-- report; an image whose flag makes it unusable is never embedded silently.
ALTER TABLE images ADD COLUMN quality TEXT;

-- 0 for a label that is not an expression class (AffectNet 8 none, 9 uncertain, 10 no-face): kept for export,
-- counted by ingest and report, left out of training and proposals.
ALTER TABLE labels ADD COLUMN trainable INTEGER NOT NULL DEFAULT 1;
