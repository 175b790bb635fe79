"""Early warning between windows: Page-Hinkley (:mod:`.page_hinkley`) over the churn probabilities as they are
scored (:mod:`.detector`), its shifts recorded as ``early_warning`` alerts."""
