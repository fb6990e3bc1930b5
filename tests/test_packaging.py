from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jobstamps


def test_version_matches_metadata():
    """__version__ is the installed distribution's version."""
    assert metadata.version("jobstamps") == jobstamps.__version__


def test_public_names():
    """Every name in __all__ is importable, and dir() lists them."""
    for name in jobstamps.__all__:
        assert getattr(jobstamps, name) is not None
    assert set(jobstamps.__all__) <= set(dir(jobstamps))


def test_unknown_name_is_an_attribute_error():
    """A missing name raises AttributeError, like any module."""
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jobstamps.nope  # noqa: B018


def test_py_typed_is_shipped():
    """The package is marked as typed."""
    assert (Path(jobstamps.__file__).parent / "py.typed").is_file()


def test_importing_the_core_stays_light():
    """The modules a call needs import neither attrs, typing nor hashlib."""
    code = (
        "import sys, jobstamps._core, jobstamps.jobstamp\n"
        "print(' '.join(m for m in ('attrs', 'typing', 'hashlib', 'inspect', 'logging') if m in sys.modules))"
    )
    heavy = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(jobstamps.__file__).parent.parent)},
    ).stdout.strip()

    assert "" == heavy


def light_imports(code: str) -> list[str]:
    """
    The heavy modules imported by running *code* in a fresh interpreter.
    """
    probe = (
        f"{code}\n"
        "import sys\n"
        "heavy = ('attr', 'attrs', 'numpy', 'jobstamps._stampkey', 'jobstamps._protocol',\n"
        "         'jobstamps._arrays', 'jobstamps._unkeyable')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()


def test_a_decorated_hit_imports_neither_attrs_nor_numpy(tmp_path):
    """A stamped function's run and hit build no StampKey, so attrs is not imported."""
    code = (
        "import os\n"
        f"os.environ['JOBSTAMPS_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "from jobstamps import jobstamped\n"
        "def make(limit):\n"
        "    @jobstamped\n"
        "    def f(x, y='a'):\n"
        "        return [x, y, limit]\n"
        "    return f\n"
        "f = make(3)\n"
        "f(1); f(1); f(1, y='b'); f.out_of_date(1)\n"
    )

    assert [] == light_imports(code)


def test_a_cached_command_imports_no_key_extras(tmp_path):
    """A cached jobstamp run keys its command without attrs, numpy or the refusal messages."""
    code = (
        "import os\n"
        f"os.environ['JOBSTAMPS_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "from jobstamps._cli import main\n"
        "assert main(['jobstamp', '--', 'true']) == 0\n"
        "assert main(['jobstamp', '--', 'true']) == 0\n"
    )

    assert [] == light_imports(code)


def test_key_and_method_are_imported_when_asked_for():
    """StampKey and Method come with attrs and typing, on first use."""
    code = "import jobstamps\njobstamps.StampKey\njobstamps.Method\n"

    assert ["attr", "attrs", "jobstamps._stampkey", "jobstamps._protocol"] == light_imports(code)


def test_a_hit_loads_nothing_that_only_a_miss_needs(tmp_path):
    """A cached jobstamp run, and a decorated hit, load neither the stamping of a run nor the fast writing of a large stamp."""
    setup = (
        "import os\n"
        f"os.environ['JOBSTAMPS_CACHE_DIR'] = {str(tmp_path)!r}\n"
        "from jobstamps._cli import main\n"
        "from jobstamps import jobstamped\n"
        "@jobstamped\n"
        "def f(x):\n"
        "    return x\n"
    )
    miss = setup + "assert main(['jobstamp', '--', 'true']) == 0\nf(1)\n"
    hit = (
        setup
        + "import sys\n"
        + "assert main(['jobstamp', '--', 'true']) == 0\nassert f(1) == 1\n"
        + "print(' '.join(m for m in ('jobstamps._stamping', 'jobstamps._largewrite') if m in sys.modules))\n"
    )
    subprocess.run([sys.executable, "-c", miss], check=True, capture_output=True)
    loaded = subprocess.run(
        [sys.executable, "-c", hit], check=True, capture_output=True, text=True
    ).stdout.split()

    assert [] == loaded
