"""Shadow scoring: the version the challenger alias names is scored on live traffic beside the champion.

The challenger's probabilities are only recorded (``predictions.challenger_probability``), never acted on,
so that a retrained version can be compared with the serving one on the same records before anyone
promotes it. Hence the rule of this module: nothing about the challenger may fail or delay the champion.
Its alias is re-resolved at the champion's refresh, never per batch; an alias that is not set means no
challenger; a version that cannot be loaded, or cannot score the features, is logged once per refresh and
the batches are scored by the champion alone until a later refresh loads one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from churn_common.schema import FEATURE_COLUMNS
from stream_scorer.model_registry import ModelNotFoundError, ModelVersion

if TYPE_CHECKING:
    from stream_scorer.model import LoadedModel

log = logging.getLogger(__name__)


class IncompatibleChallengerError(ValueError):
    """The challenger expects other features than the records carry: every predict would fail."""


def _checked(model: LoadedModel) -> LoadedModel:
    expected = len(FEATURE_COLUMNS)
    if (found := model.booster.num_features()) != expected:
        raise IncompatibleChallengerError(f"model takes {found} features, records carry {expected}")
    return model


def refreshed_challenger(
    current: LoadedModel | None,
    *,
    name: str,
    alias: str,
    champion: LoadedModel,
    resolve: Callable[[str, str], ModelVersion],
    load: Callable[[ModelVersion], LoadedModel],
) -> LoadedModel | None:
    """The challenger to shadow-score with until the next refresh: ``current`` when the alias still names
    it (or the registry could not say), ``None`` when the alias is unset, names the champion (nothing to
    compare after a promotion) or names a version that cannot be used."""
    try:
        version = resolve(name, alias)
    except ModelNotFoundError:
        if current is not None:
            log.info("%s@%s no longer set: scoring with the champion only", name, alias)
        return None
    except Exception:
        log.warning("%s@%s could not be resolved; keeping the challenger as it was", name, alias, exc_info=True)
        return current
    if version.version == champion.version:
        return None
    if current is not None and current.version == version.version:
        return current
    try:
        loaded = _checked(load(version))
    except Exception:
        log.warning(
            "challenger %s version %s cannot be used; scoring with the champion only until the next refresh",
            name,
            version.version,
            exc_info=True,
        )
        return None
    log.info("shadow scoring with %s version %s", name, version.version)
    return loaded


def shadow_probabilities(challenger: LoadedModel | None, features: np.ndarray) -> list[float] | None:
    """The challenger's churn probabilities for the champion's feature matrix; ``None`` (logged) rather than
    an error when it fails, since the batch must still be stored with the champion's."""
    if challenger is None:
        return None
    try:
        return challenger.predict_proba(features).tolist()
    except Exception:
        log.warning("challenger version %s failed to score the batch", challenger.version, exc_info=True)
        return None
