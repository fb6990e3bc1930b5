"""
What names a function and what its code is, within one process and across
processes: scripts, ``python -m``, edits and moves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import pytest

from jobstamps._code import code_digest, function_name, module_name

FUNCTION = """\
def f(x, *, scale=2):
    def inner(y):
        return [y * scale for _ in range(3)]
    if x in {"a", "b", "c"}:
        return inner(x)
    return (x, 1.5, None, ...)
"""


def compiled(source, filename="<jobs>", above=""):
    namespace = {}
    exec(compile(above + source, filename, "exec", dont_inherit=True), namespace)
    return namespace["f"]


def digest(source, **options):
    return code_digest(compiled(source, **options).__code__)


class TestCodeDigest:
    def test_moves_comments_and_blank_lines_keep_it(self):
        """Moving a function down a file, adding comments and blank lines above it, keeps its digest."""
        moved = digest(FUNCTION, filename="elsewhere.py", above="# a comment\n\n\n\nimport os\n\n")
        commented = digest(FUNCTION.replace("    if x in", "    # why\n\n    if x in"))

        assert digest(FUNCTION) == moved
        assert digest(FUNCTION) == commented

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("return (x, 1.5, None, ...)", "return (x, 1.25, None, ...)"),  # a constant
            ("y * scale", "y + scale"),  # an operator, in a nested function
            ("range(3)", "range(4)"),  # inside a comprehension
            ('{"a", "b", "c"}', '{"a", "b", "d"}'),  # a member of a constant set
            ("range(3)", "enumerate(3)"),  # a global name
            ("scale=2", "scale=2, extra=0"),  # the signature
        ],
    )
    def test_edits_change_it(self, old, new):
        """Changing the body, a nested function or the signature changes the digest."""
        assert digest(FUNCTION) != digest(FUNCTION.replace(old, new))

    def test_is_the_same_in_another_process(self):
        """The digest does not depend on the process's hash seed."""
        code = (
            "from jobstamps._code import code_digest\n"
            f"source = {FUNCTION!r}\n"
            "namespace = {}\n"
            "exec(compile(source, '<jobs>', 'exec'), namespace)\n"
            "print(code_digest(namespace['f'].__code__).hex())\n"
        )
        there = {
            subprocess.run(
                [sys.executable, "-c", code],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": seed},
            ).stdout.strip()
            for seed in ("1", "2", "3")
        }

        assert {digest(FUNCTION).hex()} == there


class TestModuleName:
    @pytest.fixture(name="main")
    def _main(self, monkeypatch):
        main = types.ModuleType("__main__")
        monkeypatch.setitem(sys.modules, "__main__", main)
        return main

    def test_other_modules_keep_their_name(self):
        """A function of an imported module is module:qualname."""
        assert "jobstamps._code:function_name" == function_name(function_name)

    def test_python_dash_m_names_the_module(self, main):
        """Under python -m, __main__ is named by its spec."""
        main.__spec__ = types.SimpleNamespace(name="pkg.tool")

        assert "pkg.tool" == module_name("__main__")

    def test_script_is_named_by_its_path_from_the_project_root(self, main, tmp_path, monkeypatch):
        """A script is named by its path relative to the project root."""
        monkeypatch.setenv("JOBSTAMPS_ROOT", str(tmp_path))
        main.__spec__ = None
        main.__file__ = str(tmp_path / "tools" / "build.py")

        assert "tools/build.py" == module_name("__main__")

    def test_script_outside_the_root_is_named_by_its_absolute_path(self, main, tmp_path, monkeypatch):
        """A script outside the project root keeps its absolute path."""
        monkeypatch.setenv("JOBSTAMPS_ROOT", str(tmp_path / "project"))
        main.__spec__ = None
        main.__file__ = str(tmp_path / "elsewhere.py")

        assert str(tmp_path / "elsewhere.py") == module_name("__main__")

    def test_interactive_main_is_main(self, main):
        """Without a script or a spec (python -c, a notebook), __main__ stays __main__."""
        main.__spec__ = None

        assert "__main__" == module_name("__main__")


SCRIPT = """\
import sys
from jobstamps import jobstamped


@jobstamped
def compute(x):
    print("ran", file=sys.stderr)
    return {body}


print(compute(5), compute.key(5).function)
"""


def python(*args, cwd=None):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=True, cwd=cwd, timeout=60
    )


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


class TestAcrossProcesses:
    """
    Real processes sharing one cache directory ($JOBSTAMPS_CACHE_DIR).
    """

    def test_two_scripts_never_share_stamps(self, tmp_path):
        """script1.py and script2.py each define compute(x): each gets its own result."""
        write(tmp_path / "script1.py", SCRIPT.format(body="x + 1"))
        write(tmp_path / "script2.py", SCRIPT.format(body="x * 100"))

        first = python("script1.py", cwd=tmp_path)
        second = python("script2.py", cwd=tmp_path)
        again = python("script1.py", cwd=tmp_path)

        assert "6 script1.py:compute\n" == first.stdout
        assert "500 script2.py:compute\n" == second.stdout
        assert ("6 script1.py:compute\n", "") == (again.stdout, again.stderr)

    def test_python_dash_m_is_named_by_module(self, tmp_path):
        """python -m pkg.one and python -m pkg.two don't share stamps, and name their module."""
        write(tmp_path / "pkg" / "__init__.py", "")
        write(tmp_path / "pkg" / "one.py", SCRIPT.format(body="x + 1"))
        write(tmp_path / "pkg" / "two.py", SCRIPT.format(body="x * 100"))

        first = python("-m", "pkg.one", cwd=tmp_path)
        second = python("-m", "pkg.two", cwd=tmp_path)

        assert "6 pkg.one:compute\n" == first.stdout
        assert "500 pkg.two:compute\n" == second.stdout

    def test_edited_function_runs_again_and_moved_one_still_hits(self, tmp_path):
        """An edit to the body retires the stamps; moving the function down keeps them."""
        script = tmp_path / "job.py"
        write(script, SCRIPT.format(body="x + 1"))
        first = python("job.py", cwd=tmp_path)
        write(script, SCRIPT.format(body="x + 2"))
        edited = python("job.py", cwd=tmp_path)
        write(script, "# moved down\n\n\nimport os\n\n\n" + SCRIPT.format(body="x + 1"))
        moved = python("job.py", cwd=tmp_path)

        assert ("6 job.py:compute\n", "ran\n") == (first.stdout, first.stderr)
        assert ("7 job.py:compute\n", "ran\n") == (edited.stdout, edited.stderr)
        assert ("6 job.py:compute\n", "") == (moved.stdout, moved.stderr)

    def test_two_checkouts_of_one_script_share_stamps(self, tmp_path):
        """The same script in two git checkouts is one function: the second run hits."""
        for checkout in ("one", "two"):
            (tmp_path / checkout / ".git").mkdir(parents=True)
            write(tmp_path / checkout / "tools" / "job.py", SCRIPT.format(body="x + 1"))

        first = python(os.path.join("tools", "job.py"), cwd=tmp_path / "one")
        second = python(os.path.join("tools", "job.py"), cwd=tmp_path / "two")

        assert ("6 tools/job.py:compute\n", "ran\n") == (first.stdout, first.stderr)
        assert ("6 tools/job.py:compute\n", "") == (second.stdout, second.stderr)
