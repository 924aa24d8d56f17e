"""Node layouts: every node's names, ranges and paths are its own, and node 0 keeps the host's."""

from __future__ import annotations

import ipaddress

import pytest

from localplane.node import kubelet, layout, network


def test_node_0_is_the_host_node_as_before():
    node = layout.host_node()
    assert (node.name, node.pod_bridge, node.node_ip, node.pod_cidr, node.cgroup_root) == (
        "kube-elector-node", network.POD_BRIDGE, network.NODE_IP, network.POD_CIDR, "/")
    assert not node.isolated


def test_nodes_never_share_a_name_range_address_bridge_path_or_cgroup():
    nodes = [layout.NodeLayout(i) for i in range(layout.MAX_NODES)]
    for attribute in ("name", "pod_cidr", "node_ip", "pod_bridge", "uplink", "uplink_ip", "run_dir", "cgroup_root"):
        values = [getattr(n, attribute) for n in nodes]
        assert len(set(values)) == len(values), attribute
    cluster = ipaddress.ip_network(layout.CLUSTER_CIDR)
    ranges = [ipaddress.ip_network(n.pod_cidr) for n in nodes]
    assert all(r.subnet_of(cluster) for r in ranges)
    transit = ipaddress.ip_network(f"{layout.NODES_GATEWAY}/24", strict=False)
    assert not any(r.overlaps(transit) for r in ranges)
    assert all(ipaddress.ip_address(n.uplink_ip) in transit for n in nodes)


def test_an_index_outside_the_range_is_refused():
    with pytest.raises(ValueError, match="1 to"):
        layout.NodeLayout(layout.MAX_NODES)


def test_each_kubelet_gets_its_own_address_and_cgroup_root(tmp_path):
    second = layout.NodeLayout(1)
    config = kubelet.config(tmp_path, node=second, ca_file=tmp_path / "ca", containerd_socket=tmp_path / "s",
                            healthz_port=1)
    assert (config["address"], config["healthzBindAddress"], config["cgroupRoot"]) == (
        second.node_ip, second.node_ip, "/kube-elector-node-2")


def test_each_nodes_cni_network_uses_its_own_bridge_and_range(tmp_path):
    second = layout.NodeLayout(1)
    plugin = network.cni_config(tmp_path, second)["plugins"][0]
    assert plugin["bridge"] == "kelab1"
    assert plugin["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1",
                                          "rangeStart": "10.244.1.10"}]]
