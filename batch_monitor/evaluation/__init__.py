"""A window judged: Evidently drift and quality (:mod:`.drift`, :mod:`.drift_table`, :mod:`.summary`), quality
estimated without labels (:mod:`.performance_estimation`) against the reference (:mod:`.reference`), and a
stored window evaluated end to end (:mod:`.stored_window`)."""
