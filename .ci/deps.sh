#!/usr/bin/env bash
# Installs every Debian package and Go tool the tests need. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# Packaged daemons (kea, bind9, unbound, chrony) must not start on the host: the lab
# starts its own copies inside namespaces.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
pkgs=(
  iproute2 iputils-ping traceroute ndisc6 radvd tshark nftables
  kea-dhcp6-server kea-dhcp4-server dhcpcd isc-dhcp-client
  bind9 bind9-dnsutils unbound tayga dnsperf iperf3 curl chrony
  clang llvm libbpf-dev
  qemu-system-x86 seabios qemu-utils syslinux syslinux-common extlinux mtools e2fsprogs squashfs-tools fdisk
  chromium
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH=$PATH:$(go env GOPATH)/bin
command -v staticcheck >/dev/null || go install honnef.co/go/tools/cmd/staticcheck@latest
