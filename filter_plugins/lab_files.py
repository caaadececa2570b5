"""Jinja filters that turn a role's files into entries of library/node_files."""

from __future__ import annotations


def lab_file_entries(contents: dict, folder: str, present: bool = True) -> list[dict]:
    """node_files entries for the files of one folder (contents: name -> text, or None for
    a file that must not be there): each file with its text when present, else absent."""
    return [{"path": f"{folder.rstrip('/')}/{name}", "content": text} if present and text is not None
            else {"path": f"{folder.rstrip('/')}/{name}", "state": "absent"}
            for name, text in contents.items()]


class FilterModule:
    def filters(self):
        return {"lab_file_entries": lab_file_entries}
