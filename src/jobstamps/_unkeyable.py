"""
Values jobstamps refuses to key, and what it tells the user to do instead.

:class:`Unkeyable` says what a value is, why it has no exact key, and the
advice that fits it: a file is passed by path, a generator as a list, a lock
left out with ``ignore=``, a pandas object taught with ``register_key``. The
same refusal reads differently for an argument and for a closure variable.

A leaf: knows types by their names and modules, imports nothing from
jobstamps, and knows nothing of how values are encoded.
"""

from __future__ import annotations

import sys

# Kinds of objects that have no value to key, by the module of their type.
_NO_VALUE_MODULES = {
    "_thread": "a lock",
    "threading": "a thread or lock",
    "multiprocessing.synchronize": "a lock",
    "multiprocessing.process": "a process",
    "asyncio.locks": "a lock",
    "socket": "a socket",
    "ssl": "a socket",
    "subprocess": "a process",
    "selectors": "a selector",
}


class Unkeyable(TypeError):
    """
    A value with no exact key: *what* it is and why, and *advice*.

    *ignorable* says whether leaving it out of the key (``ignore=``) is worth
    suggesting for an argument: yes for a lock or a client, no for data.
    """

    def __init__(self, what: str, advice: str = "", *, ignorable: bool = True) -> None:
        super().__init__(what)
        self.what = what
        self.advice = advice
        self.ignorable = ignorable
        # Where the value sat, innermost first: "closure variable 'x' of f".
        self.within: list[str] = []

    def _where(self) -> str:
        return "".join(f" ({place})" for place in reversed(self.within))

    def for_argument(self, parameter: str) -> str:
        """
        The message for an argument of *parameter*.
        """
        message = (
            f"jobstamps can't key argument {parameter!r}{self._where()}: {self.what}."
        )
        if self.advice:
            message += f" {self.advice}"
        if self.ignorable:
            message += (
                " If the result does not depend on it, leave it out of the key "
                f"with ignore=({parameter!r},)."
            )
        return message

    def for_closure(self, variable: str, function: str) -> str:
        """
        The message for the closure variable *variable* of *function*.
        """
        message = (
            f"jobstamps can't key closure variable {variable!r} of {function}"
            f"{self._where()}: {self.what}. The values a function closes over "
            "are part of its key: if the result does not depend on this one, "
            f"leave it out with ignore=({variable!r},)."
        )
        if self.advice:
            message += f" Otherwise {self.advice[0].lower()}{self.advice[1:]}"
        else:
            message += " Otherwise pass what it stands for as an argument."
        return message


def named(cls: type) -> str:
    """
    *cls* as ``module.qualname``, or its bare name for a built-in type.
    """
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _kind(article_and_noun: str, cls: type) -> str:
    if cls.__module__ == "builtins":
        return article_and_noun
    return f"{article_and_noun} ({named(cls)})"


def refusal(value: object, cls: type) -> Unkeyable | None:
    """
    Why *value* must not be keyed by its repr even when that repr shows no
    address: it stands for something that changes, or has no value at all.
    None for any other value.
    """
    io = sys.modules.get("io")
    if (io is not None and isinstance(value, io.IOBase)) or (
        cls.__module__ == "tempfile" and cls.__name__ == "_TemporaryFileWrapper"
    ):
        return Unkeyable(
            f"{_kind('an open file', cls)} can change while it stays the same object",
            "Pass its path instead, and list the file in dependencies=.",
        )
    if cls.__module__ == "builtins" and cls.__name__ == "coroutine":
        return Unkeyable(
            "a coroutine has no value before it runs",
            "Await it and pass its result.",
            ignorable=False,
        )
    if hasattr(cls, "__next__") or hasattr(cls, "__anext__"):
        iterator = "a generator" if "generator" in cls.__name__ else "an iterator"
        return Unkeyable(
            f"{_kind(iterator, cls)} is used up by reading it, and nothing shows "
            "what it will yield",
            "Pass a list or tuple of its values.",
            ignorable=False,
        )
    kind = _NO_VALUE_MODULES.get(cls.__module__)
    if kind is None:
        socket = sys.modules.get("_socket")
        if socket is not None and isinstance(value, socket.socket):
            kind = "a socket"
    if kind is not None:
        return Unkeyable(f"{_kind(kind, cls)} has no value to key")
    return None


def address(cls: type, text: str) -> Unkeyable:
    """
    An object whose repr is Python's default, or holds a memory address.
    """
    return Unkeyable(
        f"{named(cls)} values print as {text!r}, which holds a memory address "
        "and so differs in every run",
        f"Give {cls.__name__} a __repr__ that shows its value, make it an "
        "attrs class or a dataclass, or teach jobstamps to key it with "
        f"jobstamps.register_key({cls.__name__}, func).",
    )


def numpy(cls: type, why: str) -> Unkeyable:
    """
    A numpy object that is not an array, a scalar or a dtype (*why* says
    what it is).
    """
    return Unkeyable(
        why,
        "Pass a numpy.ndarray (numpy.asarray() of it), or teach jobstamps to "
        f"key it with jobstamps.register_key({cls.__name__}, func).",
        ignorable=False,
    )


def pandas(cls: type) -> Unkeyable:
    """
    A pandas object: never keyed by its repr.
    """
    return Unkeyable(
        f"{named(cls)} is a pandas object, and its repr shortens and rounds its data",
        "Teach jobstamps to key it exactly with jobstamps.register_key("
        f"{cls.__name__}, func), where func returns its data in a stable "
        "form: bytes, numpy arrays or plain values.",
        ignorable=False,
    )


def same_type(cls: type) -> Unkeyable:
    """
    The function registered for *cls* returned another instance of it.
    """
    return Unkeyable(
        "the function registered with jobstamps.register_key() for "
        f"{named(cls)} returned a {named(cls)} again",
        "Return a value jobstamps can key: bytes, plain values, or a tuple of them.",
        ignorable=False,
    )
