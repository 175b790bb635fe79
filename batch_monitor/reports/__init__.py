"""Evidently reports in the bucket and the local Evidently workspace (:mod:`.workspace`);
``python -m batch_monitor.reports`` serves the workspace UI."""
