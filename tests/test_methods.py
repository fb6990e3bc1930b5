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
    def test_touched_with_identical_content_is_not_a_change(self, write, settled):
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

    def test_unchanged_stat_is_not_read_again(self, write, monkeypatch, settled):
        """A file whose stat is unchanged and old enough is not re-read."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(HashMethod(), path)
        reads = []
        monkeypatch.setattr(_methods, "file_digest", lambda p, size=-1: reads.append(p))

        assert recorded == check(HashMethod(), path, recorded)
        assert [] == reads

    def test_racily_clean_file_is_read_again(self, write, monkeypatch):
        """A file modified within the racy window of its fingerprint is re-read."""
        path = write("a")  # mtime: now, so the fingerprint is racy
        recorded = fingerprint(HashMethod(), path)
        reads = []
        real = _methods.file_digest
        monkeypatch.setattr(
            _methods, "file_digest", lambda p, size=-1: reads.append(p) or real(p)
        )

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

    def test_mtime_fingerprint_with_same_stat_is_unchanged_under_hash(self, write, settled):
        """An MTime fingerprint whose stat still matches is reused by HashMethod."""
        path = write("a", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)

        assert recorded == check(HashMethod(), path, recorded)

    def test_stamp_without_digest_can_not_prove_new_stat_unchanged(self, write, settled):
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


def same_tick(recorded, path):
    """
    *recorded* as if *path*'s current stat had been seen when it was taken:
    what a filesystem with coarse timestamps shows after a rewrite within
    one tick.
    """
    st = os.stat(path)
    return (st.st_mtime_ns, recorded[1], recorded[2], st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class TestStatSignature:
    @pytest.mark.parametrize("method", [MTimeMethod(), HashMethod()], ids=repr)
    def test_renamed_over_with_same_mtime_and_size(self, write, tmp_path, method):
        """A file renamed over a dependency, with its mtime and size, is a change."""
        path = write("settings.json", "aaaa", mtime=OLD)
        recorded = fingerprint(method, path)
        replacement = write("settings.json.tmp", "bbbb", mtime=OLD)
        os.replace(replacement, path)

        assert None is check(method, path, recorded)

    @pytest.mark.parametrize("method", [MTimeMethod(), HashMethod()], ids=repr)
    def test_symlink_pointed_elsewhere(self, write, tmp_path, method):
        """A symlink pointed at another file with the same mtime and size is a change."""
        write("config.dev.json", "dev!", mtime=OLD)
        write("config.prod.json", "prod", mtime=OLD)
        link = tmp_path / "config.json"
        link.symlink_to("config.dev.json")
        recorded = fingerprint(method, str(link))
        link.unlink()
        link.symlink_to("config.prod.json")

        assert None is check(method, str(link), recorded)

    def test_rewrite_restoring_mtime_is_caught_by_ctime(self, write, settled):
        """MTimeMethod: content rewritten and mtime set back still changed the change time."""
        path = write("a", "aaaa", mtime=OLD)
        recorded = fingerprint(MTimeMethod(), path)
        write("a", "bbbb", mtime=OLD)

        assert None is check(MTimeMethod(), path, recorded)

    def test_chmod_is_a_change_for_mtime_and_a_read_for_hash(self, write, settled):
        """A new change time alone is a change for MTimeMethod; HashMethod reads the file and finds it unchanged."""
        path = write("a", "aaaa", mtime=OLD)
        by_mtime, by_hash = fingerprint(MTimeMethod(), path), fingerprint(HashMethod(), path)
        os.chmod(path, 0o600)

        assert None is check(MTimeMethod(), path, by_mtime)
        assert os.stat(path).st_ctime_ns == check(HashMethod(), path, by_hash)[4]

    def test_device_number_is_not_part_of_it(self, write, settled):
        """The fingerprint holds mtime, size, digest, time taken, ctime and inode: no device."""
        path = write("a", "aaaa", mtime=OLD)
        st = os.stat(path)

        mtime_ns, size, _, _, ctime_ns, ino = fingerprint(HashMethod(), path)

        assert (st.st_mtime_ns, st.st_size, st.st_ctime_ns, st.st_ino) == (mtime_ns, size, ctime_ns, ino)
        assert st.st_dev not in (mtime_ns, size, ctime_ns, ino)

    def test_fingerprint_without_signature_is_read(self, write):
        """A fingerprint from another machine (no signature) is checked by content under HashMethod, and is a change under MTimeMethod."""
        path = write("a", "aaaa", mtime=OLD)
        digest = fingerprint(HashMethod(), path)[2]
        elsewhere = (None, 4, digest, 0, None, None)

        assert check(HashMethod(), path, elsewhere) is not None
        assert None is check(MTimeMethod(), path, elsewhere)
        write("a", "bbbb", mtime=OLD)
        assert None is check(HashMethod(), path, elsewhere)


class TestRacyMTime:
    def test_racy_file_gets_a_digest(self, write):
        """A file modified just before it is fingerprinted is hashed, even under MTimeMethod."""
        path = write("a", "aaaa")

        assert fingerprint(HashMethod(), path)[2] == fingerprint(MTimeMethod(), path)[2]

    def test_settled_file_is_not_read(self, write, settled, monkeypatch):
        """A file old enough to trust costs MTimeMethod one stat, no read."""
        path = write("a", "aaaa", mtime=OLD)
        monkeypatch.setattr(_methods, "file_digest", None)  # any read fails

        recorded = fingerprint(MTimeMethod(), path)

        assert None is recorded[2]
        assert recorded == check(MTimeMethod(), path, recorded)

    def test_rewrite_within_one_tick_is_caught(self, write):
        """A same-size rewrite that kept the whole stat signature (one timestamp tick) is a change."""
        path = write("a", "aaaa")
        recorded = fingerprint(MTimeMethod(), path)
        mtime_ns = os.stat(path).st_mtime_ns
        write("a", "bbbb")
        os.utime(path, ns=(mtime_ns, mtime_ns))

        assert None is check(MTimeMethod(), path, same_tick(recorded, path))

    def test_racy_file_rewritten_identically_is_unchanged(self, write):
        """A racily clean file whose content is the same is unchanged under MTimeMethod."""
        path = write("a", "aaaa")
        recorded = fingerprint(MTimeMethod(), path)

        assert check(MTimeMethod(), path, recorded) is not None

    def test_racy_file_without_digest_is_a_change(self, write):
        """A racy fingerprint that could not be hashed (unreadable) proves nothing: a change."""
        path = write("a", "aaaa")
        recorded = fingerprint(MTimeMethod(), path)

        assert None is check(MTimeMethod(), path, (*recorded[:2], None, *recorded[3:]))


class TestNotRegularFiles:
    @pytest.mark.parametrize("method", [MTimeMethod(), HashMethod()], ids=repr)
    def test_socket(self, tmp_path, method):
        """A socket as a dependency is a clear OSError from both methods."""
        import socket

        path = str(tmp_path / "sock")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(path)
            with pytest.raises(OSError, match="must be regular files, and this is a socket"):
                _methods.fingerprint(path, method)

    @pytest.mark.parametrize("method", [MTimeMethod(), HashMethod()], ids=repr)
    def test_device(self, method):
        """A device as a dependency is a clear OSError from both methods."""
        with pytest.raises(OSError, match="this is a character device") as raised:
            _methods.fingerprint("/dev/null", method)

        assert "/dev/null" == raised.value.filename
