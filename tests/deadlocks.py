"""
Calls that might deadlock, made so that a deadlock fails the test instead of
hanging the suite.
"""

from __future__ import annotations

import threading


def in_thread(call, timeout=30):
    """
    call() in another thread; a deadlock fails the test instead of hanging it.
    """
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "deadlocked"
    return outcome[0]
