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


@pytest.mark.parametrize(
    "value",
    ["", "0", "false", "FALSE", "False", "no", "No", "off", "OFF", " 0 ", " off\n"],
)
@pytest.mark.parametrize(
    ("variable", "read"),
    [
        ("JOBSTAMPS_DISABLED", _config.disabled),
        ("JOBSTAMPS_DEBUG", _config.debug),
        ("JOBSTAMPS_ALWAYS_USE_HASHES", _config.always_use_hashes),
    ],
)
def test_flags_off(monkeypatch, variable, read, value):
    """Empty, 0, false, no and off, in any case, turn every flag off."""
    monkeypatch.setenv(variable, value)

    assert False is read()


@pytest.mark.parametrize("value", ["1", "yes", "true", "on", "TRUE", "2", "y"])
@pytest.mark.parametrize(
    ("variable", "read"),
    [
        ("JOBSTAMPS_DISABLED", _config.disabled),
        ("JOBSTAMPS_DEBUG", _config.debug),
        ("JOBSTAMPS_ALWAYS_USE_HASHES", _config.always_use_hashes),
    ],
)
def test_flags_on(monkeypatch, variable, read, value):
    """Any other value turns a flag on."""
    monkeypatch.setenv(variable, value)

    assert True is read()


def test_flags_unset(monkeypatch):
    """An unset flag is off."""
    for name in ("JOBSTAMPS_DISABLED", "JOBSTAMPS_DEBUG", "JOBSTAMPS_ALWAYS_USE_HASHES"):
        monkeypatch.delenv(name, raising=False)

    assert (False, False, False) == (
        _config.disabled(),
        _config.debug(),
        _config.always_use_hashes(),
    )
