"""Kubernetes rotation: the kubelet swaps the ``..data`` symlink while lookups run.

The volume is built as the kubelet's AtomicWriter builds it: each visible file
is a symlink ``NAME → ..data/NAME``; an update writes a new timestamped folder,
points ``..data_tmp`` at it, renames that over ``..data`` (atomic) and deletes
the old folder. Real folders, real symlinks, real renames: nothing is faked.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from pathlib import Path

from authchain import Chain
from authchain.backends.files.source import FilesSource
from authchain.testing import canary

NAMES = ("db-password", "api-key")


class Volume:
    """A Kubernetes Secret volume in ``root``, updated the way the kubelet does it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir()
        self._serial = itertools.count()
        self.current: Path | None = None
        self.written: dict[str, set[str]] = {name: set() for name in NAMES}

    def publish(self, values: dict[str, str]) -> None:
        folder = self.root / f"..2026_12_02_10_00_00.{next(self._serial):09d}"
        folder.mkdir()
        for name, value in values.items():
            (folder / name).write_text(value, encoding="utf-8")
            (folder / name).chmod(0o600)
            self.written[name].add(value)
        os.symlink(folder.name, self.root / "..data_tmp")
        os.rename(self.root / "..data_tmp", self.root / "..data")
        for name in values:
            if not os.path.lexists(self.root / name):
                os.symlink(f"..data/{name}", self.root / name)
        if self.current is not None:
            shutil.rmtree(self.current)
        self.current = folder


def versions() -> dict[str, str]:
    # Long values: a read that mixed two versions, or stopped half-way, could not pass for one.
    return {name: canary() + "-" + canary() * 200 for name in NAMES}


def test_concurrent_lookups_during_swaps_see_one_whole_version(tmp_path: Path) -> None:
    volume = Volume(tmp_path / "volume")
    volume.publish(versions())
    stop = threading.Event()
    answers: dict[str, list[str]] = {name: [] for name in NAMES}
    failures: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                for name in NAMES:
                    answers[name].append(chain.resolve(f"files://{name}").get_secret_value())
                    answers[name].append(chain.resolve(name.upper().replace("-", "_")).get_secret_value())
        except BaseException as error:  # any error at all fails the test below
            failures.append(error)

    # References and bare names (through the kebab transform) both read the volume.
    chain = Chain([FilesSource(path=volume.root, name_transform="kebab")], cache_ttl=0)
    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        for _ in range(300):
            volume.publish(versions())
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=60)
        chain.close()
    assert not failures, f"a lookup failed during a swap: {type(failures[0]).__name__}"
    for name in NAMES:
        seen = answers[name]
        assert seen, f"{name} was never read"
        torn = [answer for answer in seen if answer not in volume.written[name]]
        assert not torn, f"{name}: {len(torn)} answers were not one whole published version"
        assert len(set(seen)) > 1, f"{name}: the readers never saw a rotation"


def test_the_read_resolves_again_when_the_folder_vanishes_under_it(tmp_path: Path) -> None:
    """The race made certain: the swap happens between resolving the path and opening it."""
    volume = Volume(tmp_path / "volume")
    old, new = versions(), versions()
    volume.publish(old)
    opened: list[str] = []

    class SwapBeforeTheFirstOpen(FilesSource):
        def _read_file(self, real: str, entry: str, root: str) -> tuple[bytes, os.stat_result] | None:
            if not opened:
                volume.publish(new)  # `real` now points into a deleted folder
            opened.append(real)
            return super()._read_file(real, entry, root)

    source = SwapBeforeTheFirstOpen(path=volume.root)
    result = source.get("db-password")
    assert len(opened) == 2, "the first open should have missed and the path been resolved again"
    assert opened[0] != opened[1]
    assert result.value.get_secret_value() == new["db-password"]  # type: ignore[union-attr]


def test_a_rotated_value_is_seen_once_the_cache_ttl_has_passed(tmp_path: Path) -> None:
    volume = Volume(tmp_path / "volume")
    old, new = versions(), versions()
    volume.publish(old)
    now = [1000.0]
    with Chain(
        [FilesSource(path=volume.root, name_transform="kebab")], cache_ttl=30, clock=lambda: now[0]
    ) as chain:
        assert chain.resolve("DB_PASSWORD").get_secret_value() == old["db-password"]
        volume.publish(new)
        now[0] += 29
        assert chain.resolve("DB_PASSWORD").get_secret_value() == old["db-password"]  # still cached
        now[0] += 2
        assert chain.resolve("DB_PASSWORD").get_secret_value() == new["db-password"]
