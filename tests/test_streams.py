"""
A command's output through its stamp: kept in the order it was read, byte
for byte, checked before it is replayed, and never held whole in memory (a
real gigabyte through real processes, measured with getrusage).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from jobstamps import _stampfile
from jobstamps._stampfile import Payload, Stamp, pack
from jobstamps._stdin import spool_stdin
from jobstamps._streams import (
    STDERR,
    STDOUT,
    CorruptOutputError,
    Sink,
    Tee,
    replay,
)

from .test_cli import JOBSTAMP, Env

GIB = 1 << 30
MIB = 1 << 20
# Runs its arguments with stdout to /dev/null, then prints the peak RSS (KiB)
# of its children (jobstamp and what jobstamp waited for) and their status.
# In between, so that the test process's own size is not counted.
HOP = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


@pytest.fixture(name="env")
def _env(tmp_path):
    return Env(tmp_path)


def peak(env, *args, stdin=None):
    """
    The peak RSS in MiB of ``jobstamp *args`` (and of the command it runs),
    and its exit status; of ``sh -c ...`` when *args* starts so.
    """
    argv = list(args) if args[0] == "sh" else [*JOBSTAMP, *args]
    done = subprocess.run(
        [sys.executable, "-c", HOP, *argv],
        stdin=stdin,
        capture_output=True,
        env=env.environ,
        cwd=env.tmp,
        check=True,
        timeout=120,
    )
    rss, code = done.stdout.split()
    return int(rss) / 1024, int(code)


class TestOrder:
    def test_streams_interleave_as_they_were_read(self, env):
        """1 to stdout, 2 to stderr, 3 to stdout, 4 to stderr come out 1 2 3 4 under 2>&1, live and replayed."""
        script = (
            "printf 1; sleep 0.2; printf 2 >&2; sleep 0.2; printf 3; sleep 0.2; printf 4 >&2"
        )
        runs = [
            subprocess.run(
                [*JOBSTAMP, "--", "sh", "-c", script],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env.environ,
                timeout=30,
            ).stdout
            for _ in range(2)
        ]
        separate = env.run("--", "sh", "-c", script)

        assert [b"1234", b"1234"] == runs
        assert (b"13", b"24") == (separate.stdout, separate.stderr)
        assert 1 == len(env.stamp_files())

    def test_empty_output(self, env):
        """No output at all is replayed as no output, with the exit code."""
        results = [env.run("--", "sh", "-c", "exit 4") for _ in range(2)]

        assert [(b"", b"", 4)] * 2 == [(r.stdout, r.stderr, r.returncode) for r in results]

    def test_binary_without_final_newline(self, env):
        """Every byte value, and no final newline, on both streams, twice."""
        code = (
            "import sys; sys.stdout.buffer.write(bytes(range(256)) * 3);"
            "sys.stderr.buffer.write(bytes(range(255, -1, -1)))"
        )
        results = [env.run("--", sys.executable, "-c", code) for _ in range(2)]

        for result in results:
            assert bytes(range(256)) * 3 == result.stdout
            assert bytes(range(255, -1, -1)) == result.stderr


def stamp_of(env):
    [path] = env.stamp_files()
    return Path(path)


class TestCorruption:
    @pytest.mark.parametrize("size", [100, 3 * MIB])
    def test_damaged_output_is_a_miss(self, env, size):
        """A stored output that fails its checksum is never replayed: the command runs again."""
        code = f"import sys; sys.stdout.write('x' * {size}); open({str(env.count_file)!r}, 'a').write('run\\n')"
        env.run("--", sys.executable, "-c", code)
        path = stamp_of(env)
        data = bytearray(path.read_bytes())
        data[_stampfile.PAYLOAD_OFFSET + 10 + size // 2] ^= 0xFF  # inside the output
        path.write_bytes(bytes(data))
        again = env.run("--", sys.executable, "-c", code)
        hit = env.run("--", sys.executable, "-c", code)

        assert (b"x" * size, 0) == (again.stdout, again.returncode)
        assert (b"x" * size, 0) == (hit.stdout, hit.returncode)
        assert 2 == env.count

    def test_replay_checks_before_writing(self, tmp_path):
        """replay() writes nothing from an output that fails its checksum."""
        frames = bytes((STDOUT,)) + (3).to_bytes(4, "big") + b"abc"
        out = tmp_path / "out"
        with open(out, "wb") as file:
            sink = Sink(file)  # type: ignore[arg-type]
            with pytest.raises(CorruptOutputError):
                replay(Payload(len(frames), zlib.crc32(frames) ^ 1, memoryview(frames)), "", {STDOUT: sink, STDERR: sink})

        assert b"" == out.read_bytes()


class TestUnits:
    def test_tee_frames_in_order_and_replays_from_file(self, tmp_path):
        """What Tee spooled replays from the stamp file, stream by stream, in order."""
        from jobstamps._fs import AtomicFile
        from jobstamps._stampfile import Spool, write

        path = str(tmp_path / "stamp")
        spool = Spool(AtomicFile(path), path)
        outs = {s: open(tmp_path / f"live{s}", "wb") for s in (STDOUT, STDERR)}  # noqa: SIM115
        tee = Tee({s: Sink(f) for s, f in outs.items()}, spool)  # type: ignore[arg-type]
        for stream, data in [(STDOUT, b"a"), (STDERR, b"bb"), (STDOUT, b""), (STDOUT, b"c\n")]:
            tee.chunk(stream, memoryview(data))
        with spool.atomic:  # type: ignore[union-attr]
            write(spool.atomic.file, Stamp(1, 2, (), (), b"r", {"x": 1}, spool))  # type: ignore[union-attr]
            spool.atomic.commit()  # type: ignore[union-attr]
        for f in outs.values():
            f.close()
        both = tmp_path / "both"
        with open(both, "wb") as file:
            sink = Sink(file)  # type: ignore[arg-type]
            payload = _stampfile.unpack(memoryview(Path(path).read_bytes())).payload
            assert payload is not None
            payload.data = None  # as for a mapped stamp: read from the file
            whole = replay(payload, path, {STDOUT: sink, STDERR: sink})

        assert True is whole
        assert (b"ac\n", b"bb") == ((tmp_path / "live1").read_bytes(), (tmp_path / "live2").read_bytes())
        assert b"abbc\n" == both.read_bytes()

    def test_stdin_from_a_file_is_not_copied(self, tmp_path, monkeypatch):
        """--stdin from a regular file hashes it where it is, from its current position."""
        import hashlib

        source = tmp_path / "in"
        source.write_bytes(b"skip" + b"data" * 1000)
        with open(source, "rb") as file:
            file.seek(4)
            monkeypatch.setattr(sys, "stdin", file)
            fd, digest = spool_stdin(str(tmp_path / "cache"))
            try:
                assert (4, hashlib.sha256(b"data" * 1000).hexdigest()) == (
                    os.lseek(fd, 0, os.SEEK_CUR),
                    digest,
                )
                assert os.path.samestat(os.fstat(fd), os.fstat(file.fileno()))
            finally:
                os.close(fd)

        assert [] == list((tmp_path / "cache").glob("*"))


def big_stamp(root: Path, size: int, index: int) -> None:
    """
    A stamp of a command whose output takes *size* bytes, as a sparse file.
    """
    stamp = Stamp(
        time.time_ns(),
        10**9,
        (),
        (),
        b"\x80\x05}\x94.",
        {"command": ["big", str(index)], "code": 0, "cwd": None, "env": [], "stdin": None, "ttl_ns": None},
        Payload(size, 0, memoryview(b"")),
    )
    prefix, _, meta, result, trailer = pack(stamp)
    folder = root / "jobstamps._command_run_command-e6d3063057bb4c56" / "00" / f"{index:02x}"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{index:040x}", "wb") as file:
        file.write(prefix)
        file.seek(len(prefix) + size)
        for part in (meta, result, trailer):
            file.write(part)


class TestMemory:
    def test_a_gigabyte_on_a_miss_and_a_hit(self, env):
        """1 GiB of output costs under 100 MiB of memory on a miss and on a hit, and is replayed whole."""
        command = f"-- head -c {GIB} /dev/zero"
        try:
            miss, code = peak(env, *command.split())
            (path,) = env.stamp_files()
            size = os.path.getsize(path)
            # The hit, piped through wc -c: the shell waits for both.
            count = env.tmp / "count"
            hit, hit_code = peak(
                env, "sh", "-c", f"{' '.join(JOBSTAMP)} {command} | wc -c > {count}"
            )
        finally:
            shutil.rmtree(env.stamps, ignore_errors=True)

        assert (0, 0) == (code, hit_code)
        assert miss < 100, f"{miss:.0f} MiB on a miss"
        assert hit < 100, f"{hit:.0f} MiB on a hit"
        assert GIB < size < GIB + GIB // 100
        assert str(GIB) == count.read_text().strip()

    def test_a_gigabyte_through_stdin(self, env):
        """1 GiB fed through --stdin costs under 100 MiB of memory, and is keyed by its digest."""
        feed = subprocess.Popen(["head", "-c", str(GIB), "/dev/zero"], stdout=subprocess.PIPE)
        try:
            used, code = peak(env, "--stdin", "--", "wc", "-c", stdin=feed.stdout)
        finally:
            feed.stdout.close()
            feed.wait()
        listing = env.run("cache", "ls").stdout.decode()
        shutil.rmtree(env.stamps, ignore_errors=True)

        assert 0 == code
        assert used < 100, f"{used:.0f} MiB through --stdin"
        # The key holds the digest of stdin, not its bytes.
        assert all(os.path.getsize(p) < 4096 for p in env.stamp_files())
        assert "stdin=49bc20df15e4" in listing  # sha256 of a GiB of zeros

    def test_cache_ls_reads_heads_only(self, env):
        """cache ls over stamps holding 10 GiB of output each reads none of it."""
        for index in range(200):
            big_stamp(env.stamps, 10 * GIB, index)
        start = time.monotonic()
        used, code = peak(env, "cache", "ls")
        took = time.monotonic() - start
        listing = env.run("cache", "ls").stdout.decode()

        assert 0 == code
        assert used < 100, f"{used:.0f} MiB"
        assert took < 20
        assert "200 entries, 2.0T in" in listing
        assert "big 199" in listing


def test_publishing_a_large_result_streams(env):
    """A 256 MiB output is published to a remote store signed, without being held in memory."""
    import hmac

    from jobstamps.remote._sealed import _SIGNED_HEADER, _mac

    secret = "s" * 32
    remote = env.tmp / "remote"
    size = 256 * MIB
    env.environ.update(
        JOBSTAMPS_SECRET=secret, JOBSTAMPS_STORE=f"file://{remote}", JOBSTAMPS_ROOT=str(env.tmp)
    )
    try:
        used, code = peak(env, "--use-hashes", "--", "head", "-c", str(size), "/dev/zero")
        (entry,) = [p for p in remote.rglob("*") if p.is_file()]
        key = str(entry.relative_to(remote))
        mac = _mac(secret.encode(), key)
        with open(entry, "rb") as file:
            header = file.read(len(_SIGNED_HEADER) + 32)
            while chunk := file.read(MIB):
                mac.update(chunk)
        stored = entry.stat().st_size
    finally:
        shutil.rmtree(env.stamps, ignore_errors=True)
        shutil.rmtree(remote, ignore_errors=True)

    assert 0 == code
    assert used < 100, f"{used:.0f} MiB publishing {size >> 20} MiB"
    assert size < stored < size + MIB
    assert _SIGNED_HEADER == header[: len(_SIGNED_HEADER)]
    assert hmac.compare_digest(header[len(_SIGNED_HEADER) :], mac.digest())


@pytest.mark.parametrize("size", [10, 3 * MIB])
def test_remote_hit_replays_the_output(env, size):
    """Another machine (an empty cache) replays the output fetched from the store, in order."""
    env.environ.update(
        JOBSTAMPS_SECRET="s" * 32,
        JOBSTAMPS_STORE=f"file://{env.tmp / 'remote'}",
        JOBSTAMPS_ROOT=str(env.tmp),
    )
    code = (
        "import sys, time\n"
        f"sys.stdout.write('o' * {size}); sys.stdout.flush(); time.sleep(0.1)\n"
        "sys.stderr.write('e'); sys.stderr.flush(); time.sleep(0.1)\n"
        "sys.stdout.write('!')\n"
        f"open({str(env.count_file)!r}, 'a').write('run\\n')\n"
    )
    first = env.run("--use-hashes", "--", sys.executable, "-c", code)
    env.environ["JOBSTAMPS_CACHE_DIR"] = str(env.tmp / "other-machine")
    fetched = subprocess.run(
        [*JOBSTAMP, "--use-hashes", "--", sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env.environ,
        timeout=60,
    )

    assert (b"o" * size + b"!", b"e") == (first.stdout, first.stderr)
    assert b"o" * size + b"e!" == fetched.stdout
    assert 1 == env.count


def test_hit_appends_to_a_file(env):
    """A hit replays into an output opened to append (where sendfile refuses) as into any other."""
    log = env.tmp / "log"
    log.write_bytes(b"before\n")
    for _ in range(2):
        subprocess.run(
            f"{' '.join(JOBSTAMP)} -- head -c 3000000 /dev/zero >> {log}",
            shell=True,
            env=env.environ,
            check=True,
            timeout=60,
        )

    assert b"before\n" + bytes(6000000) == log.read_bytes()
