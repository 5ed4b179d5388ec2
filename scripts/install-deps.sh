#!/usr/bin/env bash
# Installs the Debian packages packetlake's build, tests and demo use, if any is missing.
# Idempotent and quiet when everything is there. Needs root (apt-get), as do the BPF tests.
set -euo pipefail

packages=(
  clang llvm libbpf-dev bpftool   # build the BPF program (make generate)
  iproute2 ethtool                # network namespaces and veth pairs for tests and the demo
  nftables                        # netfilter drop rules: the drops test and the TCP health lossy path
  tcpreplay tshark tcpdump        # replay real captures; tshark is the tests' oracle
  nmap hping3 bind9-dnsutils curl openssl iputils-ping  # real traffic and attacks for tests and the demo
  dnsmasq-base nginx-light        # local DNS and HTTP(S) servers inside test namespaces
  chromium                        # the console's browser tests (headless, driven by chromedp)
  e2fsprogs util-linux            # mkfs.ext4, mount, findmnt: make bench's journaled ext4 (scripts/on-journaled-ext4.sh)
)
tools=(go java mvn npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for t in "${tools[@]}"; do
  command -v "$t" >/dev/null || { echo "install-deps: $t not found on PATH; it comes with this machine's image (see README)" >&2; exit 1; }
done
java -version 2>&1 | grep -q '"17\|"2[0-9]' || { echo "install-deps: Kafka needs Java 17 or newer" >&2; exit 1; }
