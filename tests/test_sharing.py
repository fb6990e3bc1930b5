"""
Stamps shared between machines through a remote store.

A "machine" here is a separate process with its own checkout folder and its
own local cache directory; the machines share only the remote store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from jobstamps import HashMethod, MTimeMethod, jobstamped
from jobstamps._core import Job
from jobstamps._key import KeyBuilder
from jobstamps._stampfile import KEY_CONTEXT
from jobstamps._store import read_stamp
from jobstamps.exceptions import JobstampsWarning, RemoteStoreError

from .loopback import free_port

SECRET = "a secret shared by the CI machines"
OLD = time.time() - 3600  # an mtime far outside the racy window

READER = textwrap.dedent(
    """
    import os
    from jobstamps import HashMethod, jobstamped


    @jobstamped(dependencies=["input.txt"], method=HashMethod)
    def read():
        with open(os.environ["COUNTER"], "a") as counter:
            counter.write("ran\\n")
        with open("input.txt") as file:
            return file.read()


    print(read())
    """
)

CODEGEN = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from jobstamps import HashMethod, MTimeMethod, jobstamped

    METHOD = HashMethod if os.environ.get("METHOD", "hash") == "hash" else MTimeMethod
    DEPENDENCIES = json.loads(os.environ.get("DEPENDENCIES", '["schema.txt"]'))


    @jobstamped(
        dependencies=DEPENDENCIES,
        outputs=["gen/model.py"],
        method=METHOD,
        restore_outputs=True,
    )
    def generate(name):
        with open(os.environ["COUNTER"], "a") as counter:
            counter.write("ran\\n")
        schema = Path("schema.txt").read_text()
        Path("gen").mkdir(exist_ok=True)
        Path("gen/model.py").write_text(f"# {name}\\n{schema.upper()}" * 1000)
        return {"name": name, "lines": schema.count("\\n")}


    if __name__ == "__main__":
        print(json.dumps(generate(sys.argv[1])))
    """
)


class Machine:
    """
    A checkout of a small project on a machine of its own.
    """

    def __init__(self, base: Path, name: str, store: str, counter: Path) -> None:
        self.checkout = base / name / "work" / "project"
        self.checkout.mkdir(parents=True)
        (self.checkout / ".git").mkdir()  # the project root
        (self.checkout / "codegen.py").write_text(CODEGEN)
        (self.checkout / "schema.txt").write_text("id: int\nname: str\n")
        self.env = {
            **os.environ,
            "JOBSTAMPS_CACHE_DIR": str(base / name / "cache"),
            "JOBSTAMPS_STORE": store,
            "JOBSTAMPS_SECRET": SECRET,
            "COUNTER": str(counter),
            "PYTHONPATH": str(self.checkout),
        }
        for name_ in ("JOBSTAMPS_ROOT", "JOBSTAMPS_DEBUG"):
            self.env.pop(name_, None)

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "codegen.py", *args],
            cwd=self.checkout,
            env={**self.env, **env},
            capture_output=True,
            text=True,
        )
        assert 0 == result.returncode, result.stderr
        return result

    def generate(self, name: str = "model", **env: str) -> dict[str, object]:
        return json.loads(self.run(name, **env).stdout)  # type: ignore[no-any-return]

    def script(self, name: str, text: str) -> str:
        """
        Run the Python script *text* as *name* in the checkout; its output.
        """
        (self.checkout / name).write_text(text)
        result = subprocess.run(
            [sys.executable, name],
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
        )
        assert 0 == result.returncode, result.stderr
        return result.stdout

    @property
    def output(self) -> Path:
        return self.checkout / "gen" / "model.py"


@pytest.fixture(name="counter")
def _counter(tmp_path):
    path = tmp_path / "runs"
    path.write_text("")
    return path


def runs(counter: Path) -> int:
    return len(counter.read_text().splitlines())


@pytest.fixture(name="shared_url", params=["redis", "file"])
def _shared_url(request, tmp_path):
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        return server.url
    return (tmp_path / "bucket").as_uri()


@pytest.fixture(name="local_url", params=["file", "s3"])
def _local_url(request, tmp_path):
    """
    A store of each kind that needs no server of the test's own.
    """
    if request.param == "s3":
        return request.getfixturevalue("s3_url")
    return (tmp_path / "bucket").as_uri()


class TestTwoMachines:
    def test_second_machine_hits_and_restores_outputs(self, tmp_path, shared_url, counter):
        """A result computed on one machine is a hit on another, outputs restored."""
        first = Machine(tmp_path, "ci-1", shared_url, counter)
        second = Machine(tmp_path, "ci-2", shared_url, counter)

        expected = first.generate()
        got = second.generate()

        assert {"name": "model", "lines": 2} == expected == got
        assert 1 == runs(counter)
        assert first.output.read_bytes() == second.output.read_bytes()

    def test_remote_hit_is_kept_locally(self, tmp_path, redis_server, counter):
        """After a remote hit the stamp is local: the remote is not needed again."""
        first = Machine(tmp_path, "ci-1", redis_server.url, counter)
        second = Machine(tmp_path, "ci-2", redis_server.url, counter)
        first.generate()
        second.generate()
        redis_server.stop()

        assert {"name": "model", "lines": 2} == second.generate()
        assert 1 == runs(counter)

    def test_changed_dependency_on_the_other_machine_runs(self, tmp_path, shared_url, counter):
        """A machine whose dependency differs runs the job and shares its own stamp."""
        first = Machine(tmp_path, "ci-1", shared_url, counter)
        second = Machine(tmp_path, "ci-2", shared_url, counter)
        first.generate()
        (second.checkout / "schema.txt").write_text("id: int\n")

        assert 1 == second.generate()["lines"]
        assert 2 == runs(counter)

    def test_mtime_stamps_stay_local(self, tmp_path, shared_url, counter):
        """A stamp made with MTimeMethod is not shared."""
        first = Machine(tmp_path, "ci-1", shared_url, counter)
        second = Machine(tmp_path, "ci-2", shared_url, counter)
        first.generate(METHOD="mtime")
        second.generate(METHOD="mtime")

        assert 2 == runs(counter)

    def test_mtime_stamps_of_racy_files_stay_local(self, tmp_path, monkeypatch):
        """An MTimeMethod stamp stays local even when its racily clean files got digests."""
        (tmp_path / ".git").mkdir()
        store = f"file://{tmp_path / 'shared'}"
        monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET)
        dep = tmp_path / "dep.txt"
        dep.write_text("fresh")  # modified just now: racy, so it gets a digest

        @jobstamped(dependencies=[dep], method=MTimeMethod, store=store)
        def build():
            return 1

        assert 1 == build()
        stamp = read_stamp(build._jobstamps_job.stamp_path((), {}))
        [(_, fingerprint)] = stamp.dependencies

        assert fingerprint is not None and fingerprint[2] is not None
        assert [] == [p for p in (tmp_path / "shared").rglob("*") if p.is_file()]

    def test_files_outside_the_root_stay_local(self, tmp_path, shared_url, counter):
        """A stamp naming a file outside the project root is not shared."""
        outside = tmp_path / "outside.txt"
        outside.write_text("shared by both")
        deps = json.dumps(["schema.txt", str(outside)])
        first = Machine(tmp_path, "ci-1", shared_url, counter)
        second = Machine(tmp_path, "ci-2", shared_url, counter)
        first.generate(DEPENDENCIES=deps)
        second.generate(DEPENDENCIES=deps)

        assert 2 == runs(counter)

    def test_other_arguments_are_other_entries(self, tmp_path, shared_url, counter):
        """The remote is keyed like the local store: other arguments miss."""
        first = Machine(tmp_path, "ci-1", shared_url, counter)
        second = Machine(tmp_path, "ci-2", shared_url, counter)
        first.generate("one")

        assert "two" == second.generate("two")["name"]
        assert 2 == runs(counter)

    def test_command_line(self, tmp_path, redis_server, counter):
        """jobstamp --store shares a command's output and restores its files."""
        jobstamp = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
        assert jobstamp is not None
        checkouts = [Machine(tmp_path, name, redis_server.url, counter) for name in ("a", "b")]
        command = [
            jobstamp,
            "--store",
            redis_server.url,
            "--use-hashes",
            "--restore-outputs",
            "--dependencies",
            "schema.txt",
            "--output-files",
            "copy.txt",
            "--",
            "sh",
            "-c",
            f"cp schema.txt copy.txt; echo ran >> {counter}; echo generated",
        ]
        results = [
            subprocess.run(
                command, cwd=m.checkout, env=m.env, capture_output=True, text=True, check=True
            )
            for m in checkouts
        ]

        assert ["generated\n", "generated\n"] == [r.stdout for r in results]
        assert 1 == runs(counter)
        assert "id: int\nname: str\n" == (checkouts[1].checkout / "copy.txt").read_text()


def remote_values(url: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(url)
    try:
        return {k: client.get(k) for k in client.keys("jobstamps:*") if b"blobs/" not in k}
    finally:
        client.close()


def rewrite_remote(url: str, change) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key, value in remote_values(url).items():
            client.set(key, change(value))
    finally:
        client.close()


class TestFaults:
    @pytest.mark.parametrize(
        "change",
        [
            pytest.param(lambda v: v[:-1] + bytes([v[-1] ^ 1]), id="tampered"),
            pytest.param(lambda v: v[: len(v) // 2], id="truncated"),
            pytest.param(lambda v: b"garbage", id="garbage"),
        ],
    )
    def test_bad_remote_entry_is_a_miss(self, tmp_path, redis_server, counter, change):
        """A tampered, truncated or garbage remote entry is a miss with a warning."""
        first = Machine(tmp_path, "ci-1", redis_server.url, counter)
        second = Machine(tmp_path, "ci-2", redis_server.url, counter)
        first.generate()
        rewrite_remote(redis_server.url, change)

        result = second.run("model")

        assert {"name": "model", "lines": 2} == json.loads(result.stdout)
        assert 2 == runs(counter)
        assert 1 == result.stderr.count("JobstampsWarning"), result.stderr

    def test_wrong_secret_is_a_miss(self, tmp_path, redis_server, counter):
        """An entry signed with another secret is rejected, with a warning."""
        first = Machine(tmp_path, "ci-1", redis_server.url, counter)
        second = Machine(tmp_path, "ci-2", redis_server.url, counter)
        first.generate()

        result = second.run("model", JOBSTAMPS_SECRET="not the secret the others use")

        assert {"name": "model", "lines": 2} == json.loads(result.stdout)
        assert 2 == runs(counter)
        assert 1 == result.stderr.count("JobstampsWarning")

    def test_remote_down_at_start(self, tmp_path, counter):
        """A remote that is down costs one warning; the job runs and is stamped locally."""
        url = f"redis://127.0.0.1:{free_port()}/0"
        machine = Machine(tmp_path, "ci-1", url, counter)

        first = machine.run("model")
        second = machine.run("model")

        assert json.loads(first.stdout) == json.loads(second.stdout)
        assert 1 == runs(counter)
        assert 1 == first.stderr.count("JobstampsWarning")
        assert "" == second.stderr  # a local hit never asks the remote

    def test_remote_killed_mid_run(self, tmp_path, redis_server, counter):
        """A remote that dies while the job runs: correct result, local stamp kept."""
        runs_seen = []

        @jobstamped(store=redis_server.url, secret=SECRET, method=HashMethod, cache_dir=tmp_path / "c", ignore=("runs_seen", "redis_server"))
        def job(x):
            runs_seen.append(x)
            redis_server.stop()
            return x * 2

        with pytest.warns(JobstampsWarning, match="remote store"):
            assert 42 == job(21)
        assert 42 == job(21)
        assert [21] == runs_seen

    def test_no_secret_is_refused(self, tmp_path, redis_url, monkeypatch):
        """A remote store without a secret is refused unless trusted explicitly."""
        monkeypatch.delenv("JOBSTAMPS_SECRET", raising=False)

        @jobstamped(store=redis_url, cache_dir=tmp_path / "c")
        def job(x):
            return x

        with pytest.raises(RemoteStoreError, match="JOBSTAMPS_SECRET"):
            job(1)

    def test_trusted_store_without_secret(self, tmp_path, redis_url, monkeypatch):
        """trust_store=True shares unsigned entries."""
        monkeypatch.delenv("JOBSTAMPS_SECRET", raising=False)
        runs_seen = []

        def job(x):
            runs_seen.append(x)
            return x

        for cache in ("one", "two"):
            shared = jobstamped(
                store=redis_url, trust_store=True, method=HashMethod, cache_dir=tmp_path / cache, ignore=("runs_seen",)
            )(job)
            assert "unsigned" == shared("unsigned")
        assert ["unsigned"] == runs_seen


class TestInProcess:
    def test_memory_store_between_two_caches(self, tmp_path, monkeypatch):
        """Two local caches share results through an fsspec memory:// store."""
        monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET)
        (tmp_path / ".git").mkdir()
        (tmp_path / "in.txt").write_text("data")
        runs_seen = []

        def job(x):
            runs_seen.append(x)
            return x.upper()

        results = []
        for cache in ("one", "two"):
            shared = jobstamped(
                dependencies=["in.txt"],
                method=HashMethod,
                store="memory://jobstamps-test-shared",
                cache_dir=tmp_path / cache, ignore=("runs_seen",),
            )(job)
            results.append(shared("abc"))

        assert ["ABC", "ABC"] == results
        assert ["abc"] == runs_seen

    def test_environment_variable_configures_the_store(self, tmp_path, monkeypatch):
        """JOBSTAMPS_STORE and JOBSTAMPS_ROOT configure sharing without arguments."""
        monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET)
        monkeypatch.setenv("JOBSTAMPS_STORE", "memory://jobstamps-test-env")
        monkeypatch.setenv("JOBSTAMPS_ROOT", str(tmp_path))
        runs_seen = []

        def job(x):
            runs_seen.append(x)
            return x

        for cache in ("one", "two"):
            monkeypatch.setenv("JOBSTAMPS_CACHE_DIR", str(tmp_path / cache))
            jobstamped(method=HashMethod, ignore=("runs_seen",))(job)(5)

        assert [5] == runs_seen

    def test_bad_store_argument(self):
        """store= must be a URL or a store object."""
        with pytest.raises(TypeError, match="store must be a URL"):
            jobstamped(store=42)(len)

    def test_key_depends_on_python_and_stamp_format(self):
        """Keys include the stamp format version and Python's major.minor."""

        def f(x):
            pass

        assert f"python={sys.version_info[0]}.{sys.version_info[1]}".encode() in KEY_CONTEXT
        assert b"stamp-format=" in KEY_CONTEXT
        assert KeyBuilder(f, None, b"a").digest((1,), {}) != KeyBuilder(f, None, b"b").digest((1,), {})
        assert KeyBuilder(f, None, KEY_CONTEXT).digest((1,), {}) == Job(f).keys.digest((1,), {})


class TestRestoreOutputs:
    def make(self, tmp_path, runs_seen, **options):
        out = tmp_path / "gen" / "out.bin"

        @jobstamped(outputs=[out], restore_outputs=True, ignore=("runs_seen",), **options)
        def build(size):
            runs_seen.append(size)
            out.parent.mkdir(exist_ok=True)
            out.write_bytes(os.urandom(size))
            os.chmod(out, 0o751)
            return size

        return build, out

    def test_missing_output_is_written_back(self, tmp_path):
        """A deleted output is restored from the cache instead of running again."""
        runs_seen = []
        build, out = self.make(tmp_path, runs_seen)
        build(3 << 20)
        original = out.read_bytes()
        out.unlink()

        assert 3 << 20 == build(3 << 20)
        assert original == out.read_bytes()
        assert 0o751 == out.stat().st_mode & 0o777
        assert [3 << 20] == runs_seen

    def test_corrupt_kept_copy_runs_again(self, tmp_path, cache_dir):
        """A kept copy whose contents don't match its name is not restored."""
        runs_seen = []
        build, out = self.make(tmp_path, runs_seen)
        build(1000)
        out.unlink()
        for blob in (cache_dir / "blobs").rglob("*"):
            if blob.is_file():
                blob.write_bytes(b"corrupt")

        build(1000)

        assert [1000, 1000] == runs_seen
        assert 1000 == out.stat().st_size

    def test_without_restore_a_missing_output_runs(self, tmp_path):
        """Without restore_outputs, a missing output makes the job run."""
        out = tmp_path / "out.txt"
        runs_seen = []

        @jobstamped(outputs=[out], ignore=("runs_seen",))
        def build():
            runs_seen.append(1)
            out.write_text("x")

        build()
        out.unlink()
        build()

        assert [1, 1] == runs_seen

    def test_changed_dependency_is_not_masked(self, tmp_path, write):
        """Outputs are restored only for a stamp that is otherwise fresh."""
        dep = write("dep", "one", mtime=1_000_000)
        runs_seen = []
        build, out = self.make(tmp_path, runs_seen, dependencies=[dep], method=MTimeMethod)
        build(10)
        out.unlink()
        write("dep", "two", mtime=2_000_000)

        build(10)

        assert [10, 10] == runs_seen

    def test_out_of_date_knows_a_kept_output_is_restored(self, tmp_path, cache_dir):
        """out_of_date says None for a missing output that a call would restore."""
        runs_seen = []
        build, out = self.make(tmp_path, runs_seen)
        build(10)
        out.unlink()

        assert build.out_of_date(10) is None
        for blob in (cache_dir / "blobs").rglob("*"):
            if blob.is_file():
                blob.unlink()
        assert str(out) == build.out_of_date(10)


    def test_out_of_date_answers_as_a_call_with_the_copy_kept_remotely(
        self, tmp_path, cache_dir, monkeypatch
    ):
        """A missing output kept only in the remote store is one a call restores, and out_of_date says so."""
        monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET)
        (tmp_path / ".git").mkdir()
        runs_seen = []
        build, out = self.make(
            tmp_path, runs_seen, method=HashMethod, store="memory://jobstamps-test-kept"
        )
        build(10)
        original = out.read_bytes()
        out.unlink()
        for blob in (cache_dir / "blobs").rglob("*"):
            if blob.is_file():
                blob.unlink()

        assert build.out_of_date(10) is None
        assert 10 == build(10)
        assert original == out.read_bytes()
        assert [10] == runs_seen


def test_cache_clear_removes_kept_outputs_no_stamp_names(tmp_path, counter):
    """jobstamp cache clear also removes the output contents its stamps kept."""
    jobstamp = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
    cache = tmp_path / "c"
    env = {**os.environ, "JOBSTAMPS_CACHE_DIR": str(cache)}
    command = [jobstamp, "--restore-outputs", "--output-files", "out.txt", "--", "sh", "-c", "echo made > out.txt"]
    subprocess.run(command, cwd=tmp_path, env=env, check=True)
    blobs = [p for p in (cache / "blobs").rglob("*") if p.is_file()]
    assert 1 == len(blobs)
    old = 1_000_000_000
    os.utime(blobs[0], (old, old))  # kept long ago: not a job's fresh output

    result = subprocess.run(
        [jobstamp, "cache", "clear"], env=env, check=True, capture_output=True, text=True
    )

    assert "1 kept output file(s)" in result.stdout
    assert [] == [p for p in (cache / "blobs").rglob("*") if p.is_file()]


def entry_key(stamped, *args):
    """
    The remote key of the stamp of ``stamped(*args)``.
    """
    from jobstamps import _sharing

    job = stamped._jobstamps_job
    return _sharing.remote_key(job.keys.function, job.stamp_path(args, {}))


def rewrite_entry(url, key, change):
    """
    Replace the remote stamp under *key* with ``change(stamp)``, signed with
    the shared secret: what a holder of the secret could write.
    """
    from jobstamps._stampfile import pack, unpack
    from jobstamps.remote import open_remote

    remote = open_remote(url, secret=SECRET)
    stamp = unpack(remote.get(key))
    change(stamp)
    remote.put(key, b"".join(bytes(part) for part in pack(stamp)))


@pytest.fixture(name="project")
def _project(tmp_path, monkeypatch):
    """
    A project root with the shared secret set, and a memory:// store of the
    test's own.
    """
    monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET)
    (tmp_path / ".git").mkdir()
    return f"memory://jobstamps-test-{os.urandom(6).hex()}"


class TestStatSignaturesStayLocal:
    def test_same_mtime_other_content(self, tmp_path, local_url, counter):
        """
        Two checkouts whose input.txt differ in content but share mtime and
        size each get their own result, and keep it.
        """
        first = Machine(tmp_path, "ci-1", local_url, counter)
        second = Machine(tmp_path, "ci-2", local_url, counter)
        for machine, content in ((first, "aaaa"), (second, "bbbb")):
            (machine.checkout / "input.txt").write_text(content)
            os.utime(machine.checkout / "input.txt", (OLD, OLD))

        assert "aaaa\n" == first.script("reader.py", READER)
        assert "bbbb\n" == second.script("reader.py", READER)
        assert "bbbb\n" == second.script("reader.py", READER)
        assert 2 == runs(counter)

    def test_fetched_stamp_records_local_signatures(self, tmp_path, project, settled):
        """
        A stamp fetched from the store is checked by content here; its local
        copy records this machine's stat signatures, none of the other's.
        """
        from jobstamps._store import read_stamp

        (tmp_path / "input.txt").write_text("same")
        runs_seen = []

        def read():
            runs_seen.append(1)
            return (tmp_path / "input.txt").read_text()

        stamped = [
            jobstamped(
                dependencies=["input.txt"],
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / cache,
                ignore=("runs_seen",),
            )(read)
            for cache in ("one", "two")
        ]
        stamped[0]()
        (tmp_path / "input.txt").write_text("same")  # new times here

        assert "same" == stamped[1]()
        local = read_stamp(stamped[1]._jobstamps_job.stamp_path((), {}))
        st = os.stat(tmp_path / "input.txt")
        mtime_ns, size, _, _, ctime_ns, ino = local.dependencies[0][1]
        assert (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size) == (
            mtime_ns,
            ctime_ns,
            ino,
            size,
        )
        assert [1] == runs_seen

    def test_published_stamps_hold_no_stat_signature(self, tmp_path, project):
        """
        What is published names each dependency's size and digest, and no
        time or inode of the machine that made it.
        """
        from jobstamps._stampfile import unpack
        from jobstamps.remote import open_remote

        (tmp_path / "input.txt").write_text("data")

        @jobstamped(dependencies=["input.txt"], method=HashMethod, store=project)
        def read():
            return (tmp_path / "input.txt").read_text()

        read()
        shared = unpack(open_remote(project, secret=SECRET).get(entry_key(read)))

        [(name, (mtime_ns, size, digest, _, ctime_ns, ino))] = shared.dependencies
        assert ("input.txt", None, None, None, 4) == (
            name,
            mtime_ns,
            ctime_ns,
            ino,
            size,
        )
        assert 64 == len(digest)

    def test_signatures_in_a_fetched_entry_are_ignored(self, tmp_path, project):
        """
        A remote entry that does carry a stat signature matching a file here
        (written by another version, or forged) is still checked by content.
        """
        (tmp_path / "input.txt").write_text("aaaa")
        runs_seen = []

        def read():
            runs_seen.append(1)
            return (tmp_path / "input.txt").read_text()

        one, two = (
            jobstamped(
                dependencies=["input.txt"],
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / cache,
                ignore=("runs_seen",),
            )(read)
            for cache in ("one", "two")
        )
        one()
        (tmp_path / "input.txt").write_text("bbbb")
        os.utime(tmp_path / "input.txt", (OLD, OLD))
        st = os.stat(tmp_path / "input.txt")

        def forge(stamp):
            ((name, fp),) = stamp.dependencies
            signature = (st.st_mtime_ns, fp[1], fp[2], st.st_mtime_ns + 10**12)
            stamp.dependencies = ((name, (*signature, st.st_ctime_ns, st.st_ino)),)

        rewrite_entry(project, entry_key(one), forge)

        assert "bbbb" == two()
        assert [1, 1] == runs_seen


class TestAge:
    def test_ttl_hits_a_stamp_from_the_store(self, tmp_path, project):
        """
        A stamp from a remote store is as old as its run, wherever that ran:
        with a maximum age it is a hit on a machine that never had it.
        """
        runs_seen = []

        def job(x):
            runs_seen.append(x)
            return x

        for cache in ("one", "two"):
            shared = Job(
                job,
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / cache,
                ignore=("runs_seen",),
            )
            assert 5 == shared.call((5,), {}, max_age_ns=3600 * 10**9)

        assert [5] == runs_seen

    def test_command_line_ttl(self, tmp_path, counter):
        """
        jobstamp --ttl with a shared store replays on a second machine.
        """
        jobstamp = shutil.which("jobstamp", path=os.path.dirname(sys.executable))
        url = (tmp_path / "bucket").as_uri()
        command = [jobstamp, "--ttl", "1h", "--use-hashes", "--store", url, "--"]
        command += ["sh", "-c", f"echo ran >> {counter}; echo hello"]
        outputs = []
        for name in ("a", "b"):
            machine = Machine(tmp_path, name, url, counter)
            outputs.append(
                subprocess.run(
                    command,
                    cwd=machine.checkout,
                    env=machine.env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )

        assert ["hello\n", "hello\n"] == outputs
        assert 1 == runs(counter)

    def test_creation_in_the_future_counts_as_now(self, tmp_path, project):
        """
        A stamp made by a machine whose clock runs ahead is fresh, and its
        local copy ages from when it was fetched: it is never fresh for
        longer than the maximum age.
        """
        from jobstamps._store import read_stamp

        runs_seen = []
        hour = 3600 * 10**9

        def job(x):
            runs_seen.append(x)
            return x

        one, two = (
            jobstamped(
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / cache,
                ignore=("runs_seen",),
            )(job)
            for cache in ("one", "two")
        )
        one(5)
        ahead = time.time_ns() + 240 * hour

        def set_created(stamp):
            stamp.created_ns = ahead

        rewrite_entry(project, entry_key(one, 5), set_created)

        assert 5 == two._jobstamps_job.call((5,), {}, max_age_ns=hour)
        assert [5] == runs_seen
        assert (
            read_stamp(two._jobstamps_job.stamp_path((5,), {})).created_ns
            <= time.time_ns()
        )


class TestUntrustedEntries:
    def test_output_digest_outside_the_cache(self, tmp_path, project):
        """
        A signed entry naming an output digest that is a path out of the cache
        is ignored: restoring never removes or reads a file outside it.
        """
        out = tmp_path / "gen.txt"
        victim = tmp_path / "caches" / "victim.txt"
        runs_seen = []

        def build():
            runs_seen.append(1)
            out.write_text("made")
            return 1

        one, two = (
            jobstamped(
                outputs=[out],
                restore_outputs=True,
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / "caches" / cache,
                ignore=("runs_seen",),
            )(build)
            for cache in ("one", "two")
        )
        one()
        victim.write_text("precious")

        def point_outside(stamp):
            ((name, _, mode),) = stamp.outputs
            stamp.outputs = ((name, "../victim.txt", mode),)

        rewrite_entry(project, entry_key(one), point_outside)
        out.unlink()

        assert 1 == two()
        assert "precious" == victim.read_text()
        assert "made" == out.read_text()
        assert [1, 1] == runs_seen

    @pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd", "a/./b", "a//b"])
    def test_names_outside_the_project(self, tmp_path, project, name, caplog):
        """
        A signed entry naming a dependency by a path that is not a plain
        relative path inside the project is ignored.
        """
        (tmp_path / "input.txt").write_text("data")
        runs_seen = []

        def read():
            runs_seen.append(1)
            return 1

        one, two = (
            jobstamped(
                dependencies=["input.txt"],
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / cache,
                ignore=("runs_seen",),
            )(read)
            for cache in ("one", "two")
        )
        one()

        def rename(stamp):
            ((_, fp),) = stamp.dependencies
            stamp.dependencies = ((name, fp),)

        rewrite_entry(project, entry_key(one), rename)
        caplog.set_level("DEBUG", logger="jobstamps")

        two()

        assert [1, 1] == runs_seen
        assert f"ignoring the remote stamp {entry_key(one)}" in caplog.text


class TestPoisonedBlobs:
    def test_poisoned_remote_copy_is_uploaded_again(self, tmp_path, project, caplog):
        """
        A remote copy of an output overwritten with junk costs one run: the
        machine that finds it bad runs the job and uploads the real file, so
        the next machine restores it without running.
        """
        import hashlib

        from jobstamps.remote import open_remote

        out = tmp_path / "gen.txt"
        content = b"generated\n" * 1000
        runs_seen = []

        def build():
            runs_seen.append(1)
            out.write_bytes(content)
            return 1

        machines = [
            jobstamped(
                outputs=[out],
                restore_outputs=True,
                method=HashMethod,
                store=project,
                cache_dir=tmp_path / cache,
                ignore=("runs_seen",),
            )(build)
            for cache in ("one", "two", "three")
        ]
        machines[0]()
        key = "blobs/" + hashlib.sha256(content).hexdigest()
        backend = open_remote(project, secret=SECRET).inner.inner
        backend.put(key, b"junk")
        caplog.set_level("DEBUG", logger="jobstamps")

        out.unlink()
        assert 1 == machines[1]()
        out.unlink()
        assert 1 == machines[2]()

        assert content == out.read_bytes()
        assert content == backend.get(key)
        assert [1, 1] == runs_seen
        assert f"discarding {key}" in caplog.text


class TestS3:
    def test_second_machine_hits_and_restores_outputs(self, tmp_path, s3_url, counter):
        """
        Through a real S3 server, a result computed on one machine is a hit
        on another, its outputs restored.
        """
        first = Machine(tmp_path, "ci-1", s3_url, counter)
        second = Machine(tmp_path, "ci-2", s3_url, counter)

        expected = first.generate()
        got = second.generate()

        assert {"name": "model", "lines": 2} == expected == got
        assert 1 == runs(counter)
        assert first.output.read_bytes() == second.output.read_bytes()

    def test_tampered_entry_is_a_miss(self, tmp_path, s3_url, counter):
        """
        An S3 entry changed by someone without the secret is a miss with a
        warning; the job runs and the result is right.
        """
        import s3fs

        first = Machine(tmp_path, "ci-1", s3_url, counter)
        second = Machine(tmp_path, "ci-2", s3_url, counter)
        first.generate()
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        entries = [p for p in fs.find(s3_url) if "/blobs/" not in p]
        assert 1 == len(entries)
        data = fs.cat_file(entries[0])
        fs.pipe_file(entries[0], data[:-1] + bytes([data[-1] ^ 1]))

        result = second.run("model")

        assert {"name": "model", "lines": 2} == json.loads(result.stdout)
        assert 2 == runs(counter)
        assert 1 == result.stderr.count("JobstampsWarning"), result.stderr

    def test_server_killed_mid_run(self, tmp_path, s3_server, monkeypatch):
        """
        An S3 server that dies while the job runs: the right result, one
        warning, and the local stamp kept.
        """
        monkeypatch.setenv("JOBSTAMPS_SECRET", SECRET)
        (tmp_path / ".git").mkdir()
        runs_seen = []

        @jobstamped(
            store=f"s3://jobstamps-test/{os.urandom(4).hex()}",
            method=HashMethod,
            cache_dir=tmp_path / "c",
            ignore=("runs_seen", "s3_server"),
        )
        def job(x):
            runs_seen.append(x)
            s3_server.stop()
            return x * 2

        with pytest.warns(JobstampsWarning, match="remote store") as record:
            assert 42 == job(21)
        assert 42 == job(21)
        assert [21] == runs_seen
        assert [__file__] == [w.filename for w in record]
