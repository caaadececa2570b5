"""Lab 09: without NET_ADMIN a pod cannot change its interfaces, with it it can;
hostPID shows the node's processes; a privileged pod sees the node's devices."""

from labcheck import ready_pods, running_container, until


def running(host, name: str) -> dict:
    # Wait only for a pod that exists: without a manifest there is nothing to wait for.
    deadline = 10 if ready_pods(host, name) else 0
    found = until(lambda: running_container(host, name), deadline)
    assert found, f"{name} is not running: is its manifest in /etc/kubernetes/manifests?"
    return found


def log(host, container: dict) -> str:
    return host.run(f"crictl logs {container['id']} 2>&1").stdout


def run_in(host, container: dict, command: str) -> str:
    return host.run(f"crictl exec {container['id']} sh -c {command!r}").stdout


def test_without_net_admin_the_interface_cannot_change(host):
    output = log(host, running(host, "net-plain"))
    assert "Operation not permitted" in output and "mtu 65536" in output, (
        f"net-plain should fail to set the MTU and keep lo at 65536; its log: {output.strip()}")


def test_with_net_admin_it_can(host):
    output = log(host, running(host, "net-admin"))
    assert "FAILED" not in output and "mtu 1400" in output, (
        f"net-admin should set lo's MTU to 1400; its log: {output.strip()}")


def test_host_pid_shows_the_node_processes(host):
    shared = run_in(host, running(host, "host-pid"), "ps -o comm")
    own = run_in(host, running(host, "net-plain"), "ps -o comm")
    assert "kubelet" in shared and "containerd" in shared, \
        "ps in host-pid does not show the node's kubelet and containerd"
    assert "kubelet" not in own, "ps in net-plain shows the node's kubelet: it should not"


def test_a_privileged_pod_sees_the_node_devices(host):
    privileged = run_in(host, running(host, "privileged"), "ls /dev").split()
    plain = run_in(host, running(host, "net-plain"), "ls /dev").split()
    assert "kmsg" in privileged, f"privileged does not see /dev/kmsg (sees {privileged})"
    assert "kmsg" not in plain, "net-plain sees /dev/kmsg: it should not"
    assert len(privileged) > len(plain)
