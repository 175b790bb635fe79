"""Train, evaluate, register and promote the churn model."""
