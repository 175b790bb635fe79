"""``make chaos``: the pipeline under injected faults, reconciled row by row (see :mod:`infra.local.chaos.run`)."""
