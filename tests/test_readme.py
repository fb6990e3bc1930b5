from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Every Python block in the README runs as written, in order."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}

    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)

    assert len(blocks) >= 2
    assert (tmp_path / "notes.txt.upper").exists()


def test_readme_test_command_is_what_ci_runs():
    """CI runs exactly the test command the README gives newcomers."""
    readme = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"^\$ (.*pip install.*pytest.*)$", readme, re.MULTILINE)

    assert 1 == len(commands)
    assert commands[0] in ci.splitlines()
