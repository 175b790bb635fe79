"""Customer-churn data: the dataset's CSV format, where the training data comes from, and synthetic rows.

The pipeline must run anywhere, including offline and without the real dataset, so this package can
download the original data, fall back to bundled synthetic samples, and generate drifted or degraded
batches on demand for the monitor's scenarios.
"""
