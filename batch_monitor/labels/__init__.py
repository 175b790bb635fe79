"""Labels that arrive later: CSV drops under ``LABELS_PREFIX`` joined to stored predictions, exactly once.

Pure parts (:mod:`.formats`: which names are read and how their bytes become text; :mod:`.contract`: one row's
contract and each row's outcome within its file) are kept apart from the adapters (:mod:`.store`: the
database, :mod:`.source`: S3), so the rules can be tested without either. The monitor flow runs
:func:`.ingest.ingest_labels` before it evaluates windows.
"""
