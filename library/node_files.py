#!/usr/bin/python
"""Put a role's files and directories on a node as given, in one module run."""

from __future__ import annotations

import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: node_files
short_description: A role's files and directories, as given, in one module run
description:
  - Each entry is a directory, a file with the given content, or a path that must not
    exist. A file is written only where its content differs, into a temporary file in
    the same folder that is then renamed over it, so a reader never sees half a file.
    Mode, owner and group are set where they differ.
  - One module run for all of a role's files instead of one or two per file
    (docs/provisioning.md, "A converge with nothing to do").
  - Supports check mode and diff mode.
options:
  files:
    description: The entries, applied in order (a directory before the files in it).
    type: list
    elements: dict
    required: true
    suboptions:
      path: {description: Absolute path on the node., type: path, required: true}
      state:
        description: What must be at the path.
        type: str
        choices: [file, directory, absent]
        default: file
      content: {description: The file's whole content (state file)., type: str, default: ""}
      mode: {description: Mode, default 0644 for a file and 0755 for a directory., type: raw}
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
      backup:
        description: Keep a file's previous content beside it (as Ansible's own modules do).
        type: bool
        default: false
"""

RETURN = r"""
changed_paths:
  description: The paths this run changed (or would change, in check mode).
  type: list
  elements: str
  returned: always
backups:
  description: For each file replaced with backup set, where its previous content is.
  type: dict
  returned: always
"""

ENTRY = {
    "path": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
    # Logged on the node like any module argument (no_log would also blank diff mode's
    # output): no role passes a key or token here; keys are written by the pki role.
    "content": {"type": "str", "default": ""},
    "mode": {"type": "raw"},
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
    "backup": {"type": "bool", "default": False},
}


def current_content(module: AnsibleModule, path: str) -> bytes | None:
    """The file's bytes; None where nothing is. Anything but a regular file is an error."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        module.fail_json(msg=f"{path} is not a regular file; move it aside and run again")
    with open(path, "rb") as file:
        return file.read()


def set_attributes(module: AnsibleModule, path: str, attributes: dict, changed: bool) -> bool:
    """Mode, owner and group where they differ (only reported in check mode)."""
    changed = module.set_owner_if_different(path, attributes["owner"], changed)
    changed = module.set_group_if_different(path, attributes["group"], changed)
    return module.set_mode_if_different(path, attributes["mode"], changed)


def write(module: AnsibleModule, path: str, content: bytes, attributes: dict) -> None:
    """Atomically: a temporary file in the same folder, written, synced and given its mode
    and owner, then renamed over the path."""
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".node_files.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        set_attributes(module, temporary, attributes, False)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def apply(module: AnsibleModule, entry: dict, diffs: list, backups: dict) -> bool:
    path, state = entry["path"], entry["state"]
    mode = entry["mode"] or ("0755" if state == "directory" else "0644")
    attributes = {"mode": mode, "owner": entry["owner"], "group": entry["group"]}
    changed = False
    if state == "absent":
        if os.path.lexists(path):
            if os.path.isdir(path) and not os.path.islink(path):
                module.fail_json(msg=f"{path} is a directory; node_files removes only files")
            diffs.append({"before_header": path, "before": "present\n", "after": "absent\n"})
            if not module.check_mode:
                os.unlink(path)
            changed = True
        return changed
    if state == "directory":
        if not os.path.isdir(path):
            if os.path.lexists(path):
                module.fail_json(msg=f"{path} exists and is not a directory; move it aside")
            diffs.append({"before_header": path, "before": "absent\n", "after": "directory\n"})
            if module.check_mode:
                return True
            os.makedirs(path, mode=0o755)
            changed = True
    else:
        wanted = entry["content"].encode()
        present = current_content(module, path)
        if present != wanted:
            diffs.append({"before_header": path, "after_header": path,
                          "before": "" if present is None else present.decode(errors="replace"),
                          "after": entry["content"]})
            if module.check_mode:
                return True
            if entry["backup"] and present is not None:
                backups[path] = module.backup_local(path)
            write(module, path, wanted, attributes)
            changed = True
    return set_attributes(module, path, attributes, changed)


def main() -> None:
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True,
                                 "options": ENTRY}},
        supports_check_mode=True,
    )
    changed_paths: list[str] = []
    diffs: list[dict] = []
    backups: dict[str, str] = {}
    for entry in module.params["files"]:
        if apply(module, entry, diffs, backups):
            changed_paths.append(entry["path"])
    result = {"changed": bool(changed_paths), "changed_paths": changed_paths, "backups": backups}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
