-- 0007_reserved: a placeholder, so that the migrations of this branch are
-- numbered without gaps; number 7 is another change's. It changes
-- nothing. Replace it with that change's migration when both are merged.
SELECT 1;
