-- 005_review_queue_index: the review queue read from indexes alone (issue 10, 1M images).
-- A run's proposals were read by joining every one to its image (path, split) and sorting them: 1.3 s for the 187k
-- proposals of a 1M-image run, before the review showed its first face. The session now reads a first window in
-- margin order (run_images_queue_by_margin, no sort) and the whole queue in image order (run_images_queue: the
-- labels join then walks the labels table in order), and an image's path only when it is shown.
-- Partial: only rows with a proposal are indexed.

CREATE INDEX run_images_queue_by_margin ON run_images (run_id, proposal_margin DESC, image_id, proposed_label, given_label, importance)
  WHERE proposed_label IS NOT NULL;
CREATE INDEX run_images_queue ON run_images (run_id, image_id, proposed_label, given_label, proposal_margin, importance)
  WHERE proposed_label IS NOT NULL;
