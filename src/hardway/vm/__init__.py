"""Real VMs (QEMU) that prove hardway on a machine with its own kernel and systemd."""
