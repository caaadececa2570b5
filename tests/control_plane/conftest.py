"""The control plane's real-node tests, in lanes of `make test` (tests/conftest.py): the
control plane on a test lab of the worker's own, and a class with a control plane (the
molecule scenario turns it on too: tests/test_molecule.py). `hardway up --control-plane`
builds the control plane's components into the mirror first when they are not there
(about 3 more minutes cold)."""

from tests.integration.conftest import host_before  # noqa: F401  (a fixture these tests use)
