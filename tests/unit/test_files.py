"""One way to write a file atomically and one way to wait for the shared build cache."""

from __future__ import annotations

import multiprocessing
import threading
import time

from hardway.files import atomic_write, exclusive


def _hold(path, held, release):
    with exclusive(path, lambda _: None, "is testing"):
        held.set()
        release.wait(10)


def test_a_second_builder_says_it_waits_and_runs_only_after_the_first(tmp_path):
    lock = tmp_path / "cache" / "build.lock"
    held, release = multiprocessing.Event(), multiprocessing.Event()
    first = multiprocessing.Process(target=_hold, args=(lock, held, release))
    first.start()
    try:
        assert held.wait(10)
        said: list[str] = []
        started = time.monotonic()
        threading.Timer(0.5, release.set).start()  # the first builder finishes in 0.5 s
        with exclusive(lock, said.append, "is building the mirror"):
            waited = time.monotonic() - started
    finally:
        release.set()
        first.join(10)
    assert said == [f"waiting: another hardway is building the mirror ({lock})"]
    assert waited >= 0.4


def test_an_uncontended_lock_says_nothing(tmp_path):
    said: list[str] = []
    with exclusive(tmp_path / "build.lock", said.append, "is building the mirror"):
        pass
    assert said == []


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "dir" / "file.json"
    atomic_write(target, b"old")
    atomic_write(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]
