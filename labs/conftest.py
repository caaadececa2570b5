"""pytest loads this for every lab check; it puts labs/ (and so labcheck.py) on the path.

`hardway lab check` writes every node's inventory variables and an ssh configuration (one
shared connection per node) to files named in HARDWAY_CHECK_VARS and HARDWAY_CHECK_SSH."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import testinfra
from labcheck import Node


def _all_vars() -> dict:
    path = os.environ.get("HARDWAY_CHECK_VARS")
    return json.loads(Path(path).read_text()) if path else {}


def node_name(host) -> str:
    return host.backend.host.name


@pytest.fixture(scope="module")
def lab_vars(host) -> dict:
    """The node's inventory variables (pod CIDR, address, partners)."""
    return _all_vars().get(node_name(host), {})


@pytest.fixture(scope="module")
def node(host) -> Node:
    """What the node shows, read once for the whole check."""
    return Node(host)


@pytest.fixture(scope="module")
def other_nodes(host, lab_vars) -> list[tuple[str, dict, object]]:
    """(name, variables, testinfra host) of each node this one works with: a class's pairs
    (lab_peers, maybe none), or else every other node of the lab."""
    everyone = _all_vars()
    names = lab_vars["lab_peers"] if "lab_peers" in lab_vars else [
        n for n in lab_vars.get("groups", {}).get("lab_nodes", []) if n != node_name(host)]
    config = os.environ.get("HARDWAY_CHECK_SSH", "")
    return [(name, everyone.get(name, {}),
             testinfra.get_host(f"ssh://{name}?ssh_config={config}&timeout=5"
                                + ("&sudo=true" if everyone.get(name, {}).get("ansible_user", "root")
                                   != "root" else "")))
            for name in names]
