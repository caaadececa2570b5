"""Lab 09: what a pod may do to its node. NET_ADMIN alone changes only the pod's own
network namespace; with hostNetwork it changes the node's. hostPID shows the node's
processes; privileged with hostPID is a way into the whole node."""

NODE_ADDRESS = "169.254.99.9"


def test_without_net_admin_the_interface_cannot_change(node):
    output = node.logs(node.require_running("net-plain"))
    assert "Operation not permitted" in output and "mtu 65536" in output, (
        f"net-plain should fail to set the MTU and keep lo at 65536; its log: {output.strip()}")


def test_net_admin_changes_only_its_own_namespace(node):
    output = node.logs(node.require_running("net-admin"))
    assert "FAILED" not in output and "mtu 1400" in output, (
        f"net-admin should set its own lo's MTU to 1400; its log: {output.strip()}")
    own = node.host.run("ip -o link show lo").stdout
    assert "mtu 65536" in own, f"the node's own lo changed: {own.strip()}"


def test_net_admin_on_the_host_network_changes_the_node(node):
    node.require_running("host-net-admin")
    assert node.network_mode("host-net-admin") == "NODE", \
        "host-net-admin has a network namespace of its own: it needs hostNetwork: true"
    addresses = node.host.run("ip -4 -o address show dev lo").stdout
    assert NODE_ADDRESS in addresses, (
        f"the node's lo has no {NODE_ADDRESS}: host-net-admin did not change the node "
        f"(node's lo: {' '.join(addresses.split()) or 'nothing'})")


def test_host_pid_shows_the_node_processes_but_not_its_files(node):
    host_pid = node.require_running("host-pid")
    shared = node.exec_in(host_pid, "ps -o comm")[1]
    own = node.exec_in(node.require_running("net-plain"), "ps -o comm")[1]
    assert "kubelet" in shared and "containerd" in shared, \
        "ps in host-pid does not show the node's kubelet and containerd"
    assert "kubelet" not in own, "ps in net-plain shows the node's kubelet: it should not"
    code, _ = node.exec_in(host_pid, "nsenter -t 1 -m true")
    assert code != 0, "host-pid could enter the node's mount namespace: it is not privileged"


def test_privileged_with_host_pid_reaches_the_whole_node(node):
    shell = node.require_running("node-shell")
    code, seen = node.exec_in(shell, "nsenter -t 1 -m -u -- hostname")
    assert code == 0 and seen.strip().lower() == node.name, (
        f"`nsenter -t 1 -m -u hostname` in node-shell gave {seen.strip()!r} (exit {code}); "
        f"expected the node's name {node.name}: node-shell needs privileged: true and hostPID: true")
    devices = node.exec_in(shell, "ls /dev")[1].split()
    assert "kmsg" in devices, f"node-shell does not see /dev/kmsg (sees {devices})"
