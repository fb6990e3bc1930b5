"""
Kept output contents (blobs) and what cache maintenance may remove: only
files jobstamps names, only in a jobstamps cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from jobstamps import HashMethod, jobstamped

HOUR_AGO = time.time() - 3600
SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"


def jobstamp(*args, cwd, env=None):
    executable = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
    return subprocess.run(
        [executable, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def aged(path, content=b"mine"):
    """
    Write *content* to *path* and make it an hour old.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


@pytest.fixture(name="project")
def _project(tmp_path):
    """
    A project folder with files of its own under blobs/, an hour old.
    """
    project = tmp_path / "project"
    aged(project / "blobs" / "thesis.txt", b"chapter one")
    aged(project / "blobs" / "photos" / "img1.jpg", b"\xff\xd8\xff")
    return project


def users_files(project):
    return sorted(
        str(p.relative_to(project))
        for p in (project / "blobs").rglob("*")
        if p.is_file()
    )


class TestOnlyOwnFiles:
    @pytest.mark.parametrize(
        "command",
        [["clear"], ["clear", "--all"], ["prune", "--older-than", "1s", "--all"]],
        ids=" ".join,
    )
    def test_stamp_directory_in_a_project(self, project, command):
        """
        jobstamp cache clear/prune --stamp-directory . removes the stamps there
        and leaves the project's own blobs/ files alone.
        """
        made = jobstamp(
            "--stamp-directory",
            ".",
            "--restore-outputs",
            "--output-files",
            "out.txt",
            "--",
            "sh",
            "-c",
            "echo made > out.txt",
            cwd=project,
        )
        assert 0 == made.returncode, made.stderr
        for path in project.rglob("*"):
            os.utime(path, (HOUR_AGO, HOUR_AGO), follow_symlinks=False)

        result = jobstamp("cache", *command, "--stamp-directory", ".", cwd=project)

        assert 0 == result.returncode, result.stderr
        assert "removed 1 entry" in result.stdout
        assert ["blobs/photos/img1.jpg", "blobs/thesis.txt"] == users_files(project)

    @pytest.mark.parametrize(
        "command",
        [["clear", "--all"], ["prune", "--older-than", "1s", "--all"]],
        ids=" ".join,
    )
    def test_not_a_cache(self, project, command):
        """
        In a directory with no stamps and no CACHEDIR.TAG, clear and prune
        remove nothing, say so in one line, and exit 1.
        """
        result = jobstamp("cache", *command, "--stamp-directory", ".", cwd=project)

        assert 1 == result.returncode
        assert "" == result.stdout
        assert [
            f"jobstamp: {project} holds no jobstamps stamps and no CACHEDIR.TAG, "
            "but other files, so it is not a jobstamps cache: nothing removed"
        ] == result.stderr.splitlines()
        assert ["blobs/photos/img1.jpg", "blobs/thesis.txt"] == users_files(project)

    def test_collect_outside_a_cache_removes_nothing(self, project):
        """In Python, collecting in a directory that is not a cache removes nothing and returns None."""
        from jobstamps._outputs import collect

        digest = "ab" * 32
        aged(project / "blobs" / "ab" / digest)

        assert None is collect(str(project))
        assert (project / "blobs" / "ab" / digest).exists()

    def test_collect_removes_only_digest_names(self, tmp_path):
        """In a cache, only unnamed contents named by their digest, in their place, are removed."""
        from jobstamps._fs import tag_cache_dir
        from jobstamps._outputs import collect

        cache = tmp_path / "cache"
        cache.mkdir()
        tag_cache_dir(str(cache))
        digest = "ab" * 32
        ours = aged(cache / "blobs" / "ab" / digest, b"x" * 10)
        misplaced = aged(cache / "blobs" / "cd" / digest)
        upper = aged(cache / "blobs" / "AB" / digest.upper())
        other = aged(cache / "blobs" / "ab" / "notes.txt")

        assert (1, 10) == collect(str(cache))
        assert not ours.exists()
        assert misplaced.exists() and upper.exists() and other.exists()


class TestCacheDirTag:
    def test_created_cache_is_tagged(self, tmp_path):
        """A cache directory jobstamps creates holds a CACHEDIR.TAG with the standard signature."""

        @jobstamped(cache_dir=tmp_path / "new-cache")
        def job(x):
            return x

        job(1)

        first, *rest = (
            (tmp_path / "new-cache" / "CACHEDIR.TAG").read_text().splitlines()
        )
        assert SIGNATURE == first
        assert rest and all(line.startswith("#") for line in rest)

    def test_existing_directory_is_not_tagged(self, tmp_path):
        """A directory that was there before is the user's: jobstamps adds no tag to it."""
        (tmp_path / "mine").mkdir()

        @jobstamped(cache_dir=tmp_path / "mine")
        def job(x):
            return x

        job(1)

        assert not (tmp_path / "mine" / "CACHEDIR.TAG").exists()

    def test_emptied_cache_is_cleared_again(self, tmp_path):
        """A directory whose stamps were all removed (no tag: made by jobstamps 1.0) can be cleared again."""
        cache = tmp_path / "cache"
        cache.mkdir()

        @jobstamped(cache_dir=cache)
        def job(x):
            return x

        job(1)
        results = [
            jobstamp("cache", "clear", "--all", "--stamp-directory", str(cache), cwd=tmp_path)
            for _ in range(2)
        ]

        assert [0, 0] == [r.returncode for r in results], results[1].stderr
        assert "removed 1 entry" in results[0].stdout
        assert "removed 0 entries" in results[1].stdout

    def test_tagged_cache_without_stamps_is_cleared(self, tmp_path):
        """A tagged cache holding no stamps is still a cache: clear succeeds."""
        cache = tmp_path / "cache"

        @jobstamped(cache_dir=cache)
        def job(x):
            return x

        job(1)
        job.clear()

        result = jobstamp(
            "cache", "clear", "--all", "--stamp-directory", str(cache), cwd=tmp_path
        )

        assert 0 == result.returncode, result.stderr


def temporaries(cache):
    return sorted(p.name for p in (cache / "blobs").rglob("*.tmp"))


# The contents the tests below keep, and so the folder a save writes in.
KEPT = hashlib.sha256(b"a").hexdigest()


@pytest.fixture(name="abandoned")
def _abandoned(cache_dir):
    """
    Temporary files of kept contents, left an hour ago by writers killed
    midway (one beside the kept contents, one of a download into the folder
    of what the tests keep), and one of a write in progress.
    """
    aged(cache_dir / "blobs" / ".new.4242-0badc0de.tmp")
    aged(cache_dir / "blobs" / KEPT[:2] / f".{KEPT}.4242-deadbeef.tmp")
    (cache_dir / "blobs" / ".new.4343-00c0ffee.tmp").write_bytes(b"")
    return [".new.4343-00c0ffee.tmp"]


class TestAbandonedTemporaries:
    def stamped(self, tmp_path):
        out = tmp_path / "out.txt"

        @jobstamped(outputs=[out], restore_outputs=True)
        def build(text):
            out.write_text(text)
            return text

        return build

    def test_swept_by_a_later_save(self, tmp_path, cache_dir, abandoned):
        """Keeping an output removes abandoned temporaries; a fresh one stays."""
        self.stamped(tmp_path)("a")

        assert abandoned == temporaries(cache_dir)

    def test_swept_by_clear(self, tmp_path, cache_dir, abandoned):
        """f.clear() removes abandoned temporaries of kept outputs; a fresh one stays."""
        build = self.stamped(tmp_path)
        build("a")
        aged(cache_dir / "blobs" / ".new.4242-0badc0de.tmp")

        build.clear()

        assert abandoned == temporaries(cache_dir)

    @pytest.mark.parametrize(
        "command",
        [["clear", "--all"], ["prune", "--older-than", "1s", "--all"]],
        ids=" ".join,
    )
    def test_swept_by_cache_commands(self, tmp_path, cache_dir, abandoned, command):
        """jobstamp cache clear/prune remove abandoned temporaries; a fresh one stays."""
        self.stamped(tmp_path)("a")
        aged(cache_dir / "blobs" / ".new.4242-0badc0de.tmp")

        result = jobstamp("cache", *command, cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        assert abandoned == temporaries(cache_dir)


class TestPoisonedLocalCopy:
    def test_reader_removes_it_and_says_so(self, tmp_path, cache_dir, caplog):
        """A kept copy that fails its digest is removed, with a debug line, and the job runs."""
        out = tmp_path / "out.txt"
        runs = []

        @jobstamped(outputs=[out], restore_outputs=True, ignore=("runs",))
        def build():
            runs.append(1)
            out.write_text("made")

        build()
        digest = hashlib.sha256(b"made").hexdigest()
        blob = cache_dir / "blobs" / digest[:2] / digest
        blob.write_bytes(b"junk")
        out.unlink()
        caplog.set_level("DEBUG", logger="jobstamps")

        build()

        assert [1, 1] == runs
        assert f"removing {blob}: its contents don't match their name" in caplog.text
        assert b"made" == blob.read_bytes()

    def test_writer_replaces_it(self, tmp_path, cache_dir, write):
        """A job that keeps an output whose copy was overwritten with junk writes the real one."""
        out = tmp_path / "out.txt"
        dep = write("dep", "1")

        @jobstamped(
            dependencies=[dep], outputs=[out], restore_outputs=True, method=HashMethod
        )
        def build():
            out.write_text("made")

        build()
        digest = hashlib.sha256(b"made").hexdigest()
        blob = cache_dir / "blobs" / digest[:2] / digest
        blob.write_bytes(b"junk")
        write("dep", "2")

        build()

        assert b"made" == blob.read_bytes()


class TestDirectoryOutputs:
    def test_command_line(self, tmp_path):
        """jobstamp --restore-outputs with a directory output is one clear error, every run."""
        for _ in range(2):
            result = jobstamp(
                "--restore-outputs",
                "--output-files",
                "gen",
                "--",
                "mkdir",
                "-p",
                "gen",
                cwd=tmp_path,
            )

            assert 2 == result.returncode
            assert [
                "jobstamp: error: jobstamps keeps the contents of output files for "
                "restore_outputs, and this output is a directory: list the files in "
                "it as outputs instead: gen"
            ] == result.stderr.splitlines()


class TestDigests:
    @pytest.mark.parametrize(
        "digest",
        ["../victim.txt", "AB" * 32, "ab" * 31, "ab" * 33, "/etc/passwd", "", None],
    )
    def test_only_sha256_names_become_paths(self, digest):
        """Anything but 64 lowercase hex digits is refused before it touches a path."""
        from jobstamps._outputs import blob_key, blob_path, is_digest

        assert not is_digest(digest)
        with pytest.raises(ValueError, match="not a SHA-256 digest"):
            blob_path("/cache", digest)
        with pytest.raises(ValueError, match="not a SHA-256 digest"):
            blob_key(digest)

    def test_malformed_records_keep_nothing(self):
        """A stamp's output record with a malformed digest or mode names no kept contents."""
        from jobstamps._outputs import kept
        from jobstamps._stampfile import Stamp

        good = "ab" * 32
        stamp = Stamp(
            0, 0, (), (("a", good, 0o644), ("b", "../x", 0o644), ("c", good, "x")), b""
        )

        assert {"a": (good, 0o644)} == kept(stamp)
