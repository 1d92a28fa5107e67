"""A time limit for code that must end by itself (a walk, a refusal): signal.alarm, main thread only."""

import signal


class TookTooLong(Exception):
    """Not an OSError (TimeoutError is one, and glob or the engine would catch it as an I/O error)."""


class TimeLimit:
    """``with TimeLimit(seconds):`` raises TookTooLong in the block once ``seconds`` have passed."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.previous = None

    def __enter__(self):
        def expired(signum, frame):
            raise TookTooLong(f"took longer than {self.seconds} s")

        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.alarm(self.seconds)
        return self

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)
