from __future__ import annotations

import os

import platformdirs
import pytest

from jobstamps import _config


@pytest.mark.parametrize("xdg", [None, "", "   ", "/somewhere/cache", "relative/cache"])
def test_default_cache_dir_matches_platformdirs(monkeypatch, xdg):
    """Without JOBSTAMPS_CACHE_DIR the default is platformdirs' user cache dir."""
    monkeypatch.delenv("JOBSTAMPS_CACHE_DIR")
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)

    assert platformdirs.user_cache_dir("jobstamps", appauthor=False) == _config.default_cache_dir()


def test_cache_dir_variable_wins(monkeypatch, tmp_path):
    """JOBSTAMPS_CACHE_DIR is used as given, made absolute."""
    monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", "stamps")

    assert os.path.join(str(tmp_path), "stamps") == _config.default_cache_dir()


@pytest.mark.parametrize(("value", "on"), [("", False), ("1", True), ("0", True), ("yes", True)])
def test_flags_are_on_when_non_empty(monkeypatch, value, on):
    """As in 0.0.20, any non-empty value turns a flag on."""
    monkeypatch.setenv("JOBSTAMPS_DISABLED", value)

    assert on == _config.disabled()
