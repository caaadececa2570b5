"""The molecule scenario with the control plane on (molecule/control-plane): two real nodes
on a lab of their own, site.yml, idempotence, check mode, testinfra on the control plane's
node."""

from tests.test_molecule import molecule_test


def test_molecule_control_plane_scenario_passes_on_real_nodes():
    molecule_test("control-plane", 22)
