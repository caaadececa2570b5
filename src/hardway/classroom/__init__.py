"""A class: a roster turned into an inventory (roster), provisioned in parallel (up),
and its progress through the labs checked on every machine (report, page)."""
