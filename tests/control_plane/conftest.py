"""The control plane's real-node tests, lanes of `make test` (tests/conftest.py): the
control plane on a test lab of the worker's own, a class with a control plane, and the
molecule scenario with the control plane on. `hardway up --control-plane` builds the control
plane's components into the mirror first when they are not there (about 3 more minutes
cold)."""

from tests.integration.conftest import host_before  # noqa: F401  (a fixture these tests use)
