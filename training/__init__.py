"""Train, evaluate, register and promote the churn model."""

from churn_common.public_api import lazy_exports

_EXPORTS = {
    "Gate": "training.evaluate",
    "HOLDOUT_METRIC_PREFIX": "training.model",
    "alias_history": "training.aliases",
    "ensure_model": "training.train",
    "fit_model": "training.model",
    "holdout_metrics": "training.model",
    "load_version": "training.model",
    "log_model_version": "training.model",
    "move_alias": "training.aliases",
    "split_holdout": "training.model",
    "train_and_register": "training.train",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
