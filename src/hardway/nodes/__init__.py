"""Local lab nodes: systemd-nspawn machine containers on one Linux host."""
