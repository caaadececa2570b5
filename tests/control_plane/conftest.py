"""The control plane's real-node tests: opt-in (`make test-cp`), since they need the control
plane's components built (`hardway mirror build --control-plane`, about 10 minutes cold) and
take about 34 minutes on a lab of their own. They use the first test lab's settings
(HARDWAY_TEST_*), so beside `make test` give them others; even then the two class tests
share the instructor's download cache and can fail each other (docs/testing.md)."""

from tests.integration.conftest import host_before  # noqa: F401  (a fixture these tests use)
