"""Temporary settings for a block (the demo, the chaos run and the benchmarks run inside other processes' tests)."""

from __future__ import annotations

import os

import pytest

from churn_common.settings import environment_overrides, get_settings


def test_values_apply_inside_and_the_environment_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN one variable set and one unset
    monkeypatch.setenv("MONITOR_WINDOW_SECONDS", "300")
    monkeypatch.delenv("MIN_F1", raising=False)
    get_settings.cache_clear()
    # WHEN both are overridden for a block
    with environment_overrides({"MONITOR_WINDOW_SECONDS": "10", "MIN_F1": "0.9"}):
        # THEN the settings read inside see the new values
        assert (get_settings().window_seconds, get_settings().min_f1) == (10, 0.9)
    # THEN afterwards the environment and the settings are as before
    assert os.environ["MONITOR_WINDOW_SECONDS"] == "300"
    assert "MIN_F1" not in os.environ
    assert get_settings().window_seconds == 300


def test_keep_existing_only_fills_what_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_WINDOW_SECONDS", "42")
    monkeypatch.delenv("MIN_F1", raising=False)
    with environment_overrides({"MONITOR_WINDOW_SECONDS": "10", "MIN_F1": "0.9"}, keep_existing=True):
        assert os.environ["MONITOR_WINDOW_SECONDS"] == "42"
        assert os.environ["MIN_F1"] == "0.9"
    assert "MIN_F1" not in os.environ
