#!/bin/sh
# Remove lab 10's hand-made service (chains HW-*, and the route for the service network
# given as $1), if any; print "removed" when there was something to remove. Safe to run
# at any time.
found=""
for hook in OUTPUT PREROUTING; do
    while iptables -t nat -D "$hook" -j HW-SERVICES 2>/dev/null; do found=1; done
done
for chain in HW-SERVICES HW-SVC-WEB HW-SEP-WEB-1 HW-SEP-WEB-2; do
    iptables -t nat -F "$chain" 2>/dev/null && found=1
done
for chain in HW-SERVICES HW-SVC-WEB HW-SEP-WEB-1 HW-SEP-WEB-2; do
    iptables -t nat -X "$chain" 2>/dev/null || true
done
if [ -n "${1:-}" ] && ip route del "$1" dev cnio0 2>/dev/null; then
    found=1
fi
[ -z "$found" ] || echo removed
