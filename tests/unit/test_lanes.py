"""tests/conftest.py's lanes: every test file that boots nodes or runs roles as root has one
(so it is marked integration and waits for the fast lane), the others none, and the lanes
are handed out in LANE_ORDER, the control plane's first."""

import pytest

from tests import conftest
from tests.conftest import REPO

FAST = sorted(p.relative_to(REPO).as_posix() for p in [*(REPO / "tests/unit").glob("test_*.py"),
                                                         REPO / "tests/test_lint.py"])
SLOW = sorted(p.relative_to(REPO).as_posix() for folder in ("integration", "control_plane", "local")
              for p in (REPO / "tests" / folder).glob("test_*.py")) + ["tests/test_molecule.py"]


@pytest.mark.parametrize("path", SLOW)
def test_every_node_or_root_test_file_has_a_lane_in_the_order(path):
    assert conftest.lane(f"{path}::test_x") in conftest.LANE_ORDER, path


@pytest.mark.parametrize("path", FAST)
def test_unit_and_lint_files_are_the_fast_lane(path):
    assert conftest.lane(f"{path}::test_x") is None, path


def test_the_longest_lanes_are_handed_out_first():
    assert conftest.LANE_ORDER[:3] == [conftest.CONTROL_PLANE, conftest.TEST_LAB, conftest.CLASSES]
    assert len(set(conftest.LANE_ORDER)) == len(conftest.LANE_ORDER)
    # A new control-plane file is a node test too, not a fast one.
    assert conftest.lane("tests/control_plane/test_new.py::test_x") == conftest.CONTROL_PLANE
