"""
The one place the benchmarks reach into jobstamps' private modules.

Scenario 5 writes its million stamps straight in the stamp file encoding
(scenario 8 its 10,000 stamps of a command), and scenarios 5 and 6 drop the
process's stores so that a stamp is read from disk again. Private modules move between versions, so every name is looked up by
``_find``, newest location first. Everything else the benchmarks do goes
through the public API. This module knows no scenario and no timing.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _find(*places: str) -> Any:
    """
    The first of *places* ("module:name", a module of the jobstamps package)
    that exists: list the newest location first and older ones after it.
    """
    for place in places:
        module_name, name = place.split(":")
        try:
            module = importlib.import_module(f"jobstamps.{module_name}")
        except ImportError:
            continue
        if hasattr(module, name):
            return getattr(module, name)
    raise RuntimeError(f"this jobstamps has none of {', '.join(places)}")


def stamp_format() -> str:
    """
    What identifies the stamp file encoding, to know when stamps written
    earlier must be written again.
    """
    magic = _find("_stampfile:MAGIC", "_store:MAGIC")
    version = _find("_stampfile:FORMAT_VERSION", "_store:FORMAT_VERSION")
    return f"{magic.decode()}/{version}"


def stamp_encoder() -> Callable[[int, bytes], bytes]:
    """
    A function making the bytes of a stamp file: created at *created_ns*,
    no dependencies, no outputs, the pickled result *result*.
    """
    # The stamp file encoding moved from _store.encode to _stampfile.pack:
    # the new place first, then the old.
    encode = _find("_stampfile:pack", "_store:encode")
    stamp = _find("_stampfile:Stamp", "_store:Stamp")
    parameters = inspect.signature(stamp).parameters

    def encoded(created_ns: int, result: bytes) -> bytes:
        fields = {
            "created_ns": created_ns,
            "duration_ns": 0,
            "dependencies": (),
            "outputs": (),
            "result": result,
        }
        record = stamp(**{k: v for k, v in fields.items() if k in parameters})
        data = encode(record)
        if isinstance(data, bytes | bytearray | memoryview):
            return bytes(data)
        return b"".join(bytes(part) for part in data)  # sections, in order

    return encoded


def command_stamp_writer() -> tuple[str, Callable[[int, list[str], bytes], bytes]]:
    """
    The folder name of the ``jobstamp`` command's stamps, and a function
    making the bytes of one: created at *created_ns*, for the command line
    *command*, holding *output* as what it wrote to stdout.
    """
    import pickle
    import zlib

    stampfile = importlib.import_module("jobstamps._stampfile")
    folder = _find("_store:function_folder")(
        _find("_key:function_name")(_find("_command:run_command"))
    )

    def encoded(created_ns: int, command: list[str], output: bytes) -> bytes:
        frames = bytes((1,)) + len(output).to_bytes(4, "big") + output
        about = {
            "command": command,
            "code": 0,
            "cwd": None,
            "env": [],
            "stdin": None,
            "ttl_ns": None,
        }
        stamp = stampfile.Stamp(
            created_ns,
            10**9,
            (),
            (),
            pickle.dumps({"code": 0}, protocol=-1),
            about,
            stampfile.Payload(len(frames), zlib.crc32(frames), memoryview(frames)),
        )
        return b"".join(bytes(part) for part in stampfile.pack(stamp))

    return folder, encoded


def store_dropper() -> Callable[[], None]:
    """
    A function forgetting the stores this process keeps (and the stamps they
    remember), so that the next call reads its stamp from disk.
    """
    stores: dict[str, object] = _find("_job:_stores", "_core:_stores")
    return stores.clear


def stamp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """
    The stamp files under *folder*: not the cache's tag, statistics or
    anything else jobstamps keeps beside them (told by the stamp magic).
    """
    magic = _find("_stampfile:MAGIC", "_store:MAGIC")
    found = []
    for path in Path(folder).rglob("*"):
        if path.is_file():
            with open(path, "rb") as file:
                if file.read(len(magic)) == magic:
                    found.append(path)
    return found
