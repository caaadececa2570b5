"""Shared test helpers. Real-node tests live in tests/integration (and the molecule
scenario) and need root; everything else is the fast lane (`make check`).

In one run, the fast lane goes first (pytest's testpaths order) and a failure there stops
the run before any node boots: nodes cost minutes, and would only fail slower."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_fast_failures: list[str] = []


def _needs_nodes(path: Path) -> bool:
    return "integration" in path.parts or path.name == "test_molecule.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_nodes(item.path):
            item.add_marker(pytest.mark.nodes)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed and "nodes" not in report.keywords:
        _fast_failures.append(report.nodeid)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _fast_failures and "nodes" in item.keywords:
        pytest.exit(f"{len(_fast_failures)} fast test(s) failed (first: {_fast_failures[0]}): "
                    "not booting nodes", returncode=1)
