from __future__ import annotations

import os
import tempfile
import time

import pytest
from hypothesis import given

from jobstamps import HashMethod, Method, MTimeMethod, _methods
from jobstamps._methods import resolve

from .strategies import file_contents

OLD = time.time() - 3600  # an mtime far outside the racy window


def fingerprint(method, path):
    return method.fingerprint(path, os.stat(path))


def check(method, path, recorded):
    return method.check(path, os.stat(path), recorded)


class TestMTimeMethod:
    def test_unchanged_file(self, write):
        """A file with the same mtime and size is unchanged."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)

        assert recorded == check(MTimeMethod(), path, recorded)

    def test_touched_file_is_a_change(self, write):
        """A new mtime is a change, even with the same content."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)
        os.utime(path, (OLD + 1, OLD + 1))

        assert None is check(MTimeMethod(), path, recorded)

    def test_older_mtime_is_a_change_too(self, write):
        """A file restored with an older mtime is a change (0.0.20 missed it)."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)
        os.utime(path, (OLD - 100, OLD - 100))

        assert None is check(MTimeMethod(), path, recorded)

    def test_size_change_is_a_change(self, write):
        """Same mtime, other size: a change."""
        path = write("a", "x", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)
        write("a", "xy", mtime=OLD)

        assert None is check(MTimeMethod(), path, recorded)


class TestHashMethod:
    def test_touched_with_identical_content_is_not_a_change(self, write):
        """Touching a file without changing it is not a change, and refreshes the stat."""
        path = write("a", "same", mtime=OLD)
        recorded = fingerprint(HashMethod(), path)
        os.utime(path, (OLD + 10, OLD + 10))

        now = check(HashMethod(), path, recorded)

        assert now is not None
        assert recorded[2] == now[2]
        assert os.stat(path).st_mtime_ns == now[0]

    def test_copied_with_identical_content_is_not_a_change(self, write, tmp_path):
        """A file replaced by a copy with the same bytes is unchanged."""
        path = write("a", "same", mtime=OLD)
        recorded = fingerprint(HashMethod(), path)
        os.unlink(path)
        write("a", "same", mtime=OLD + 5)

        assert check(HashMethod(), path, recorded) is not None

    def test_new_content_is_a_change(self, write):
        """Different bytes are a change, even with the same stat signature."""
        path = write("a", "one", mtime=OLD)
        recorded = fingerprint(HashMethod(), path)
        write("a", "two", mtime=OLD)
        # Same mtime and size: only a racy stamp could catch this, so
        # make the recorded fingerprint racy (taken in the same tick).
        racy = (recorded[0], recorded[1], recorded[2], recorded[0])

        assert None is check(HashMethod(), path, racy)

    def test_unchanged_stat_is_not_read_again(self, write, monkeypatch):
        """A file whose stat is unchanged and old enough is not re-read."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(HashMethod(), path)
        reads = []
        monkeypatch.setattr(_methods, "file_digest", lambda p: reads.append(p))

        assert recorded == check(HashMethod(), path, recorded)
        assert [] == reads

    def test_racily_clean_file_is_read_again(self, write, monkeypatch):
        """A file modified within the racy window of its fingerprint is re-read."""
        path = write("a")  # mtime: now, so the fingerprint is racy
        recorded = fingerprint(HashMethod(), path)
        reads = []
        real = _methods.file_digest
        monkeypatch.setattr(_methods, "file_digest", lambda p: reads.append(p) or real(p))

        assert check(HashMethod(), path, recorded) is not None
        assert [path] == reads

    def test_racy_edit_within_the_same_tick_is_caught(self, write):
        """An edit that keeps mtime and size right after hashing is still a change."""
        path = write("a", "one")
        recorded = fingerprint(HashMethod(), path)
        mtime = os.stat(path).st_mtime_ns
        with open(path, "w") as f:
            f.write("two")
        os.utime(path, ns=(mtime, mtime))

        assert None is check(HashMethod(), path, recorded)

    def test_whole_second_timestamps_get_a_wider_window(self):
        """Filesystems storing whole seconds keep files racy for two seconds."""
        taken = 10_000_000_000
        assert _methods._racy(taken - 1_000_000_000, taken)
        assert not _methods._racy(taken - 1_000_000_001, taken)
        assert not _methods._racy(taken - 3_000_000_000, taken)

    def test_mtime_fingerprint_with_same_stat_is_unchanged_under_hash(self, write):
        """An MTime fingerprint whose stat still matches is reused by HashMethod."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)

        assert recorded == check(HashMethod(), path, recorded)

    def test_stamp_without_digest_can_not_prove_new_stat_unchanged(self, write):
        """An MTime fingerprint has no digest, so a touched file is a change under Hash."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)
        os.utime(path, (OLD + 1, OLD + 1))

        assert None is check(HashMethod(), path, recorded)

    @given(file_contents)
    def test_equal_content_is_never_a_change(self, content):
        """Whatever the bytes, rewriting them identically is not a change."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "f")
            with open(path, "wb") as f:
                f.write(content)
            os.utime(path, (OLD, OLD))
            recorded = fingerprint(HashMethod(), path)
            with open(path, "wb") as f:
                f.write(content)

            assert check(HashMethod(), path, recorded) is not None

    def test_large_file_digest_is_streamed(self, tmp_path):
        """Files are hashed in chunks; the digest is plain SHA-256."""
        import hashlib

        path = tmp_path / "big"
        data = os.urandom(3 << 20)
        path.write_bytes(data)

        assert hashlib.sha256(data).hexdigest() == _methods.file_digest(str(path))


class TestResolve:
    def test_classes_and_instances(self):
        """A method may be given as a class or an instance."""
        assert isinstance(resolve(MTimeMethod), MTimeMethod)
        hashes = HashMethod()
        assert hashes is resolve(hashes)

    def test_custom_method_satisfies_the_protocol(self):
        """Any object with fingerprint() and check() is a Method."""

        class Always:
            def fingerprint(self, path, stat):
                return (0, 0, None, 0)

            def check(self, path, stat, recorded):
                return recorded

        method: Method = Always()
        assert method is resolve(method)

    @pytest.mark.parametrize("bad", [object(), "HashMethod", 42])
    def test_not_a_method(self, bad):
        """Objects that are not methods are a clear TypeError naming the argument."""
        with pytest.raises(TypeError, match=r"method=.*not a jobstamps Method"):
            resolve(bad)

    def test_class_needing_arguments(self):
        """A class that can't be built without arguments says so."""

        class Needs:
            def __init__(self, x):
                pass

        with pytest.raises(TypeError, match="constructible without arguments"):
            resolve(Needs)


class TestProtocol:
    def test_built_in_methods_are_methods(self):
        """isinstance() tells the built-in methods are Methods."""
        assert isinstance(HashMethod(), Method)
        assert isinstance(MTimeMethod(), Method)

    def test_duck_typed_method_is_a_method(self):
        """A user's class with fingerprint() and check(), not inheriting, is a Method."""

        class Always:
            def fingerprint(self, path, stat):
                return (0, 0, None, 0)

            def check(self, path, stat, recorded):
                return recorded

        assert isinstance(Always(), Method)
        assert not isinstance(object(), Method)

    def test_it_is_a_typing_protocol(self):
        """Method is a typing.Protocol."""
        import typing

        assert typing.Protocol in Method.__mro__
