"""Conditional retraining: when quality stays low for N windows, train a challenger and promote it only if
it beats the serving version on a holdout of the same recent data. Off unless ``RETRAIN_ENABLED``."""
