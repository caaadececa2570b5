"""Bad input at every door of the `hardway` command: one line naming the fix, the
documented exit code (2 for usage, 1 for a failure), no traceback, and nothing done
before the input was judged. (Rosters: tests/unit/test_hostile_input.py.)"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hardway.cli import main

# (arguments, environment, exit code, words the one error line must hold)
BAD = [
    (["lab", "check", "42"], {}, 2, "no lab '42': choose one of n1"),
    (["lab", "solve", "../01"], {}, 2, "no lab '../01'"),
    (["lab", "start", "01"], {}, 2, "no inventory at"),
    (["up", "--count", "9"], {}, 2, "--count must be from 1 to 8"),
    (["nodes", "up", "--count", "0"], {}, 2, "--count must be from 1 to 8"),
    (["nodes", "restart", "node9"], {}, 2, "no node called node9"),
    (["nodes", "list"], {"HARDWAY_BRIDGE": "bad bridge"}, 2, "is not a usable bridge name"),
    (["nodes", "list"], {"HARDWAY_SUBNET": "10.77.0.0/33"}, 2, "is not an IPv4 network"),
    (["nodes", "list"], {"HARDWAY_SUBNET": "127.0.0.0/24"}, 2, "loopback"),
    (["nodes", "list"], {"HARDWAY_MIRROR_PORT": "80"}, 2, "must be a port from 1024"),
    (["nodes", "list"], {"HARDWAY_NODE_MEMORY": "lots"}, 2, "must be a size"),
    (["versions", "add", "kubelet", "1.x"], {}, 2, "must look like 1.2.3"),
    (["versions", "add", "kubeadm", "1.2.3"], {}, 2, "unknown component kubeadm"),
    (["class", "up", "../outside"], {}, 2, "is not usable as a folder name"),
    (["class", "report", "nosuch"], {}, 2, "no class 'nosuch'"),
]


@pytest.mark.parametrize(("args", "env", "code", "words"), BAD,
                         ids=[" ".join(args) + (f" {env}" if env else "") for args, env, *_ in BAD])
def test_bad_input_is_one_line_with_the_fix(tmp_path, args, env, code, words):
    state = tmp_path / "state"
    environment = {"HARDWAY_STATE": str(state), "HARDWAY_INVENTORY": str(tmp_path / "inventory"),
                   "HARDWAY_CACHE": str(tmp_path / "cache"), "HARDWAY_CLASSES": str(tmp_path),
                   **env}
    result = CliRunner().invoke(main, args, env=environment)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert words in lines[0]
    assert "Traceback" not in result.output
    # Judged before anything was made: no cache, no state, no inventory.
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


@pytest.mark.parametrize("args", [["nodes", "up", "--os", "debian14"],
                                  ["up", "--login", "admin"], ["lab", "check", "01", "--wait", "x"]])
def test_a_bad_option_value_is_clicks_usage_error(args):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "Error: Invalid value" in result.output and "Traceback" not in result.output
