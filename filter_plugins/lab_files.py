"""Jinja filters for a role's files and units: entries of library/node_files, and whether
a unit is as a converge leaves it (library/node_facts's services)."""

from __future__ import annotations


def lab_file_entries(contents: dict, folder: str, present: bool = True) -> list[dict]:
    """node_files entries for the files of one folder (contents: name -> text, or None for
    a file that must not be there): each file with its text when present, else absent."""
    return [{"path": f"{folder.rstrip('/')}/{name}", "content": text} if present and text is not None
            else {"path": f"{folder.rstrip('/')}/{name}", "state": "absent"}
            for name, text in contents.items()]


def lab_unit_settled(services: dict, unit: str) -> bool:
    """Did the facts see `unit` running and enabled, as systemd last read its files, and
    never restarted by systemd since it was started (a unit that crashes and comes back
    can be caught running)? Then a converge that changed none of its files has nothing to
    start and nothing to wait for."""
    state = (services or {}).get(unit) or {}
    return (state.get("active"), state.get("sub"), state.get("restarts"), state.get("enabled"),
            state.get("reload")) == ("active", "running", "0", "enabled", "no")


def lab_unit_needs_reload(services: dict, unit: str) -> bool:
    """Did the facts see systemd running `unit` from files changed on disk since it read
    them? (A reload for another unit earlier in the run clears systemd's own flag.)"""
    return ((services or {}).get(unit) or {}).get("reload") == "yes"


class FilterModule:
    def filters(self):
        return {"lab_file_entries": lab_file_entries, "lab_unit_settled": lab_unit_settled,
                "lab_unit_needs_reload": lab_unit_needs_reload}
