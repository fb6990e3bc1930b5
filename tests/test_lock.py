"""
The per-stamp lock: one run per stamp, and never a wait on oneself.
"""

from __future__ import annotations

from jobstamps._lock import StampLock


def test_a_thread_holding_a_stamps_lock_gets_it_again_at_once(tmp_path):
    """The lock of a stamp its thread already holds is not waited for; other threads still wait."""
    import threading

    path = str(tmp_path / "stamp")
    events = []

    def other():
        with StampLock(path):
            events.append("other")

    def nested():
        with StampLock(path):
            events.append("outer")
            with StampLock(path):
                events.append("inner")
            waiter = threading.Thread(target=other)
            waiter.start()
            waiter.join(0.2)  # it must still be waiting: we hold the lock
            events.append("released")
        waiter.join(10)

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(30)

    assert not thread.is_alive()
    assert ["outer", "inner", "released", "other"] == events
