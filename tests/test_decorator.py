"""
The wrapper @jobstamped returns: stacked, re-wrapped, and wrapping objects
with attributes of their own.
"""

from __future__ import annotations

from jobstamps import jobstamped

from .deadlocks import in_thread


class TestStacking:
    def test_outer_keeps_its_own_version_and_outputs(self, tmp_path):
        """@jobstamped(version=2, outputs=[...]) over @jobstamped keeps version and outputs."""
        out = tmp_path / "out"
        runs = []

        @jobstamped(version=2, outputs=[out], ignore=("runs",))
        @jobstamped(ignore=("runs",))
        def build(x):
            runs.append(x)
            return x

        assert 2 == build._jobstamps_job.keys.version
        assert 2 == build.key(1).version
        assert 1 == in_thread(lambda: build(1))
        assert str(out) == build.out_of_date(1)  # its output is missing
        out.write_text("x")
        assert 1 == in_thread(lambda: build(1))
        assert build.out_of_date(1) is None
        assert [1] == runs  # the second outer run hit the inner stamp

    def test_outer_stamps_are_its_own(self):
        """The outer and inner functions of a stack have different stamps."""

        @jobstamped
        @jobstamped
        def f(x):
            return x

        assert f.key(1) != f.__wrapped__.key(1)
        assert f.key(1).function == f.__wrapped__.key(1).function
        assert 1 == in_thread(lambda: f(1))

    def test_stacked_on_a_stamped_closure_reads_its_cells(self):
        """A stack over a closure is keyed by the closure's current values."""
        factor = 2

        @jobstamped
        @jobstamped
        def scaled(x):
            return x * factor

        assert 6 == scaled(3)
        factor = 10
        assert 30 == scaled(3)


class TestWrappedObjects:
    def test_callable_with_a_job_attribute(self):
        """A callable object with an attribute called _job is stamped like any other."""

        class Task:
            __name__ = "task"
            __qualname__ = "Task.task"

            def __init__(self):
                self._job = "mine"
                self._jobstamps_job = "mine too"

            def __call__(self, x):
                return x + 1

        task = Task()
        stamped = jobstamped(task)

        assert 2 == stamped(1)
        assert 2 == stamped(1)
        assert "mine" == task._job

    def test_function_attributes_are_copied_but_cannot_replace_the_job(self):
        """Attributes of the function are copied onto the wrapper; none replaces its job."""

        def f(x):
            return x

        f._jobstamps_job = "not a job"
        f.tag = "kept"
        stamped = jobstamped(f)

        assert "kept" == stamped.tag
        assert 1 == stamped(1)

    def test_job_is_not_in_the_instance_dict(self):
        """The wrapper keeps its job outside its __dict__."""
        stamped = jobstamped(lambda x: x)

        assert "_jobstamps_job" not in vars(stamped)
        assert "_job" not in vars(stamped)
