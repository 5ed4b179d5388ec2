#!/usr/bin/env bash
# Runs a command with TMPDIR on a fresh, journaled ext4 file system (a loop-mounted image),
# then unmounts and deletes it. Needs root (mount).
#
#   scripts/on-journaled-ext4.sh go test ./test/bench -run '^$' -bench IngestVsKafkaEngine -benchtime 1x
#
# Why: the benchmarks' ClickHouse and Kafka keep their data under TMPDIR (testinfra), and
# ClickHouse's CPU includes the kernel's work of creating its part files. On an ext4 without a
# journal (the root file system of the VMs packetlake is developed on: /proc/fs/jbd2 is
# empty), every inode allocation checks the inodes deleted in the last seconds
# (fs/ext4/ialloc.c, find_inode_bit: check_recently_deleted = s_journal == NULL), so that
# system CPU grows with the files the benchmark itself created and dropped: the same
# INSERT measured 0.17 to 1.48 s. A journaled ext4 (mkfs.ext4's default, what a ClickHouse
# server runs on) does not make that check. Go's own temporary files stay where they were
# (GOTMPDIR). BENCH_EXT4_SIZE sets the image's size (sparse; default 16G).
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 command [args...]" >&2
  exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "$0: needs root to loop-mount a file system" >&2
  exit 1
fi

base=${TMPDIR:-/tmp}
work=$(mktemp -d "$base/packetlake-ext4-XXXXXX")
image=$work/fs.img
mnt=$work/mnt
mkdir "$mnt"
cleanup() {
  mountpoint -q "$mnt" && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s "${BENCH_EXT4_SIZE:-16G}" "$image"
mkfs.ext4 -q -F "$image"
mount -o loop "$image" "$mnt"
chmod 1777 "$mnt"
# The mount's journal shows as a jbd2 entry for its loop device: say which, so a log shows it.
dev=$(findmnt -n -o SOURCE "$mnt")
echo "on-journaled-ext4: TMPDIR=$mnt ($dev, journal: $(ls /proc/fs/jbd2 | grep -c "^${dev#/dev/}-" || true))" >&2

GOTMPDIR=${GOTMPDIR:-$base} TMPDIR=$mnt "$@"
