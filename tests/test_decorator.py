"""
The wrapper @jobstamped returns: stacked, re-wrapped, and wrapping objects
with attributes of their own.
"""

from __future__ import annotations

from jobstamps import jobstamped


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
