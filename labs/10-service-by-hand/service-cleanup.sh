#!/bin/sh
# Remove the hand-made service of lab 10 (chains HW-*, and the route for the service
# network given as $1), if any. Safe to run at any time.
for hook in OUTPUT PREROUTING; do
    while iptables -t nat -D "$hook" -j HW-SERVICES 2>/dev/null; do :; done
done
for chain in HW-SERVICES HW-SVC-WEB HW-SEP-WEB-1 HW-SEP-WEB-2; do
    iptables -t nat -F "$chain" 2>/dev/null || true
done
for chain in HW-SERVICES HW-SVC-WEB HW-SEP-WEB-1 HW-SEP-WEB-2; do
    iptables -t nat -X "$chain" 2>/dev/null || true
done
if [ -n "${1:-}" ]; then
    ip route del "$1" dev cnio0 2>/dev/null || true
fi
