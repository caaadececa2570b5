#!/bin/bash
# What site.yml does to a lab node, as one plain shell script run over one ssh connection:
# the yardstick bench/lab_bench.py measures Ansible against (not a way to provision).
#
#   provision.sh MIRROR_URL CONFIG_DIR ARTIFACTS
#
# ARTIFACTS: one line per artifact: "<path in the mirror> <sha256> <kind> <member>=<dest> ...",
# kind binary or tarball (then members are paths inside it), or image (then the one dest is
# the image's name to import). CONFIG_DIR holds the files site.yml rendered on another node,
# by their absolute paths on the node (etc/containerd/config.toml, ...). The same steps as
# the roles: packages present, sysctls, verified downloads into a cache keyed by checksum,
# atomic installs only where a file differs, configs likewise, services enabled and
# restarted on a change, images imported when missing, the kubelet healthy.
set -euo pipefail
mirror=$1 configs=$2 artifacts=$3
cache=/var/cache/hardway-script
changed=0

for p in iptables conntrack curl iproute2 procps ca-certificates tar; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p"; changed=$((changed + 1)); }
done

# Put a file in place atomically when its content differs; say so on stdout.
place() {  # place SOURCE DEST MODE
  if ! cmp -s "$1" "$2"; then
    mkdir -p "$(dirname "$2")"
    install -m "$3" "$1" "$2.new" && mv -f "$2.new" "$2"
    echo "$2"
  fi
}

# A verified copy of a mirror file in the cache (fetched only when missing or wrong).
fetch() {  # fetch PATH SHA256 -> prints the cached file
  local dir=$cache/${2:0:12} file
  file=$dir/$(basename "$1")
  mkdir -p "$dir"
  if ! echo "$2  $file" | sha256sum --status -c 2>/dev/null; then
    curl -fsS --noproxy '*' -o "$file.part" "$mirror/$1"
    echo "$2  $file.part" | sha256sum --status -c || { echo "checksum mismatch: $1" >&2; exit 1; }
    mv "$file.part" "$file"
  fi
  echo "$file"
}

restart=""
images=()
while read -r path sum kind members; do
  if [ "$kind" = image ]; then images+=("$path $sum $members"); continue; fi
  dir=$cache/${sum:0:12}
  # The record of the last verified install: each installed file's size and mtime, as the
  # download role's record (one look, nothing hashed).
  dests=$(for m in $members; do echo "${m#*=}"; done)
  # shellcheck disable=SC2086
  if [ -f "$dir/.record" ] && [ "$(stat -c '%n %s %Y' $dests 2>/dev/null)" = "$(cat "$dir/.record")" ]; then
    continue
  fi
  file=$(fetch "$path" "$sum")
  if [ "$kind" = tarball ]; then
    rm -rf "$dir/files.partial"; mkdir "$dir/files.partial"
    tar -xzf "$file" -C "$dir/files.partial"; rm -rf "$dir/files"; mv "$dir/files.partial" "$dir/files"
  fi
  for m in $members; do
    src=${m%%=*} dest=${m#*=}
    if [ "$kind" = tarball ]; then src=$dir/files/$src; else src=$file; fi
    if [ -n "$(place "$src" "$dest" 0755)" ]; then
      changed=$((changed + 1))
      case $dest in */containerd*|*/ctr) restart="$restart containerd" ;; */kubelet) restart="$restart kubelet" ;; esac
    fi
  done
  # shellcheck disable=SC2086
  stat -c '%n %s %Y' $dests > "$dir/.record"
done < "$artifacts"

cd "$configs"
for f in $(find . -type f | sort); do
  dest=/${f#./}
  if [ -n "$(place "$f" "$dest" 0644)" ]; then
    changed=$((changed + 1))
    case $dest in
      */sysctl.d/*) sysctl -q -p "$dest" >/dev/null ;;
      */containerd*) restart="$restart containerd" ;;
      */kubelet*) restart="$restart kubelet" ;;
    esac
  fi
done
[ -n "$restart" ] && systemctl daemon-reload

service() {  # service UNIT: enabled, running, restarted if its files changed
  systemctl is-enabled -q "$1" || { systemctl enable -q "$1"; changed=$((changed + 1)); }
  if [[ " $restart " == *" $1 "* ]]; then systemctl restart "$1"
  elif ! systemctl is-active -q "$1"; then systemctl start "$1"; changed=$((changed + 1)); fi
}

service containerd
for _ in $(seq 100); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.1; done
present=$(ctr -n k8s.io images list -q)
for entry in "${images[@]}"; do
  read -r path sum name <<< "$entry"
  grep -qx "$name" <<< "$present" && continue
  ctr -n k8s.io images import --local --digests=false "$(fetch "$path" "$sum")" >/dev/null
  case $name in *pause*) ctr -n k8s.io images label "$name" io.cri-containerd.pinned=pinned >/dev/null ;; esac
  changed=$((changed + 1))
done
service kubelet
for _ in $(seq 60); do curl -fsS --noproxy '*' http://127.0.0.1:10248/healthz >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS --noproxy '*' http://127.0.0.1:10248/healthz >/dev/null
echo "changed=$changed"
