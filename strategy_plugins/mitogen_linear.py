"""Ansible's linear strategy run through Mitogen (ansible.cfg: `strategy = mitogen_linear`):
each node keeps one Python interpreter open over its SSH connection for the whole play, and
a task's module runs in it, where plain Ansible copies each module over and starts a new
Python for every task. Found here so that ansible.cfg need not name the virtual
environment's site-packages folder."""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule  # noqa: F401
