"""pytest loads this for every lab check; it puts labs/ (and so labcheck.py) on the path."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def lab_vars(host) -> dict:
    """The node's inventory variables (pod CIDR, image names)."""
    return host.ansible.get_variables()
