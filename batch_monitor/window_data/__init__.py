"""The stored data of windows: which windows are due (:mod:`.windows`), their rows read or sampled
(:mod:`.reading`, :mod:`.sample_keys`), their results stored (:mod:`.store`) and old rows pruned
(:mod:`.retention`)."""
