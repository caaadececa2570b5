import ipaddress

import pytest
import yaml

from hardway.settings import REPO, Settings, UsageError, lab_ranges


def test_defaults_put_the_host_first_and_nodes_after_ten():
    s = Settings.from_env({})
    assert s.host_address == ipaddress.IPv4Address("10.77.0.1")
    assert s.node_address(1) == ipaddress.IPv4Address("10.77.0.11")
    assert s.mirror_url == "http://10.77.0.1:8077"
    assert s.node_memory == 1536 * 2**20 and s.node_pids == 4096


@pytest.mark.parametrize(("env", "fragment"), [
    ({"HARDWAY_SUBNET": "10.77.0.0/33"}, "not an IPv4 network"),
    ({"HARDWAY_SUBNET": "10.77.0.1/24"}, "not an IPv4 network"),
    ({"HARDWAY_SUBNET": "8.8.8.0/24"}, "private range"),
    ({"HARDWAY_SUBNET": "10.77.0.0/30"}, "/28 or larger"),
    ({"HARDWAY_SUBNET": "10.240.1.0/24"}, r"overlaps the local pod networks 10\.240\.0\.0/16"),
    ({"HARDWAY_SUBNET": "10.32.0.0/24"}, r"overlaps lab_service_cidr 10\.32\.0\.0/24"),
    ({"HARDWAY_SUBNET": "127.0.0.0/24"}, "loopback"),
    ({"HARDWAY_SUBNET": "169.254.0.0/24"}, "link-local"),
    ({"HARDWAY_SUBNET": "0.0.0.0/24"}, "'this network'"),
    ({"HARDWAY_SUBNET": "240.0.0.0/24"}, "reserved"),
    ({"HARDWAY_SUBNET": "224.0.0.0/24"}, "multicast"),
    ({"HARDWAY_BRIDGE": "much-too-long0"}, "bridge name"),
    ({"HARDWAY_MIRROR_PORT": "80"}, "port from 1024"),
    ({"HARDWAY_NODE_MEMORY": "lots"}, "size such as"),
    ({"HARDWAY_NODE_MEMORY": "100M"}, "too small"),
    ({"HARDWAY_NODE_PIDS": "10"}, "at least 256"),
    ({"HARDWAY_NODE_PIDS": "²⁵⁶⁰"}, "at least 256"),
    ({"HARDWAY_MIRROR_PORT": "⁸⁰⁸⁰"}, "port from 1024"),
    ({"HARDWAY_NODE_BOOT_SECONDS": "5"}, "seconds from 10 to 3600"),
    ({"HARDWAY_NODE_BOOT_SECONDS": "ninety"}, "seconds from 10 to 3600"),
    ({"HARDWAY_CONTROL_PLANE": "yes"}, "must be 1"),
])
def test_bad_settings_say_what_to_change(env, fragment):
    with pytest.raises(UsageError, match=fragment):
        Settings.from_env(env)


def test_the_control_plane_is_off_unless_asked_for():
    assert not Settings.from_env({}).control_plane
    assert Settings.from_env({"HARDWAY_CONTROL_PLANE": "1"}).control_plane


def test_a_small_subnet_runs_out_of_node_addresses():
    s = Settings.from_env({"HARDWAY_SUBNET": "10.77.0.0/28"})
    assert s.node_address(4) == ipaddress.IPv4Address("10.77.0.14")
    with pytest.raises(UsageError, match="no room for node 5"):
        s.node_address(5)


def test_the_ranges_the_labs_use_come_from_their_own_vars():
    service = yaml.safe_load((REPO / "labs/10-service-by-hand/vars.yml").read_text())["lab_service_cidr"]
    assert ipaddress.IPv4Network(service) in lab_ranges().values()
