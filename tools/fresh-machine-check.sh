#!/usr/bin/env bash
# Proves the README's set-up on a fresh machine: bootstraps a brand-new Debian 12 root with
# mmdebstrap (minbase) from this machine's Debian apt sources, clones the repository's
# committed HEAD (or --ref) into it, and runs `bash tools/run.sh` then `bash tools/test.sh`
# there as root. Ends with one line: "fresh-machine-check: PASS (...)" or "... FAIL (...)".
# Run as root on Debian 12; it takes 30-60 minutes on 2 cores (two builds, the roofline
# benchmark, the whole suite).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tools/fresh-machine-check.sh [--ref REF] [--root DIR] [--keep] [--cache DIR] [--log FILE]

Runs the README's two commands (bash tools/run.sh, bash tools/test.sh) in a brand-new
Debian 12 chroot, on a fresh clone of the repository at REF.

  --ref REF    commit, branch or tag to check (default: HEAD; uncommitted changes are
               never part of the check)
  --root DIR   where to build the chroot (must not exist or be empty;
               default: a new directory under ${TMPDIR:-/var/tmp})
  --keep       keep the chroot afterwards, for debugging (mounts are always undone)
  --cache DIR  reuse the bootstrapped base system, a tarball kept in DIR (made on first
               use); without it every run bootstraps from scratch
  --log FILE   where to keep the log (default: next to the chroot, DIR.log)
  --help       this text

Exit status: 0 when both commands succeed, 1 when either fails, 2 on a usage or set-up error.
EOF
}

ref=HEAD root="" keep=0 cache="" log=""
while (($#)); do
  case "$1" in
    --ref) ref=${2:?--ref needs a value}; shift 2 ;;
    --root) root=${2:?--root needs a value}; shift 2 ;;
    --keep) keep=1; shift ;;
    --cache) cache=${2:?--cache needs a value}; shift 2 ;;
    --log) log=${2:?--log needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "fresh-machine-check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "fresh-machine-check: error: $*" >&2; exit 2; }
((EUID == 0)) || die "run as root (it bootstraps a chroot and mounts /proc, /sys, /dev in it)"
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || die "not inside a git checkout"
commit=$(git -C "$repo" rev-parse --verify --quiet "$ref^{commit}") || die "'$ref' is not a commit in $repo"

# Everything below runs in a private mount namespace: the chroot's mounts never show on the
# host and vanish with the namespace even if this script is killed.
if [[ -z "${SPARQ_FRESH_CHECK_NS:-}" ]]; then
  args=(--ref "$commit")
  [[ -z "$root" ]] || args+=(--root "$root")
  [[ -z "$cache" ]] || args+=(--cache "$cache")
  [[ -z "$log" ]] || args+=(--log "$log")
  ((!keep)) || args+=(--keep)
  SPARQ_FRESH_CHECK_NS=1 exec unshare --mount --propagation private -- bash "$(realpath "$0")" "${args[@]}"
fi

if [[ -z "$root" ]]; then
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/sparq-fresh-machine.XXXXXX")
else
  [[ ! -e "$root" || -z "$(ls -A "$root")" ]] || die "--root $root exists and is not empty"
  mkdir -p "$root"
fi
root=$(realpath "$root")
chmod 755 "$root"  # it becomes the chroot's /, which others (apt's _apt user) must traverse
log=${log:-$root.log}
tarball=${cache:+$(realpath -m "$cache")/debian12-minbase.tar}
exec > >(tee -a "$log") 2>&1

start=$SECONDS
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
elapsed() { printf '%dm%02ds' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }

mounted() { awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo | sort -r; }
cleanup() {
  local status=$?
  rm -f "$root.sources" "$root.test.out" ${tarball:+"$tarball.part"}
  for m in $(mounted); do umount -l "$m" || true; done
  if [[ -n "$(mounted)" ]]; then
    echo "fresh-machine-check: mounts are left under $root; not removing it" >&2
  elif ((keep)); then
    echo "fresh-machine-check: kept the chroot: $root (enter it with: chroot $root bash)"
  else
    rm -rf --one-file-system "$root"
  fi
  echo "fresh-machine-check: log: $log"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "checking $(git -C "$repo" log -1 --format='%h %s' "$commit") from $repo in $root"
[[ -z "$(git -C "$repo" status --porcelain)" ]] ||
  echo "note: $repo has uncommitted changes; the check uses commit ${commit:0:12} only"

# This machine's apt sources for Debian 12 (bookworm*), in either format, and nothing else.
sources=$root.sources
{
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e "$f" ]] && awk 'BEGIN{RS=""; ORS="\n\n"} /(^|\n)Suites:[^\n]*[ \t]bookworm(-[a-z]+)?([ \t\n]|$)/' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -e "$f" ]] && awk '$1 == "deb" {for (i = 2; i <= NF; ++i) if ($i ~ /^bookworm(-[a-z]+)?$/) {print; next}}' "$f"
  done
} >"$sources"
grep -q bookworm "$sources" || die "no Debian 12 (bookworm) apt source in /etc/apt/sources.list*"
echo "apt sources:" && sed 's/^/  /' "$sources"

if ! command -v mmdebstrap >/dev/null; then
  step "installing mmdebstrap on this machine"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi

if [[ -n "$tarball" && -s "$tarball" ]]; then
  step "unpacking the cached base system $tarball"
  tar -C "$root" -xpf "$tarball"
else
  step "bootstrapping Debian 12 (minbase) with mmdebstrap"
  if [[ -n "$tarball" ]]; then
    mkdir -p "$(dirname "$tarball")"
    mmdebstrap --variant=minbase --format=tar bookworm "$tarball.part" "$sources" && mv "$tarball.part" "$tarball"
    tar -C "$root" -xpf "$tarball"
  else
    mmdebstrap --variant=minbase bookworm "$root" "$sources"
  fi
fi
echo "Debian $(cat "$root/etc/debian_version"), $(chroot "$root" dpkg-query -f '.\n' -W | wc -l) packages"

step "mounting /proc, /sys, /dev, /dev/pts, /dev/shm, /run"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"  # apt inside needs DNS
# Chroot hygiene, not set-up: a package's daemon must not start on the host.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"

step "cloning ${commit:0:12} into /root/sparq"
git clone -q --no-checkout "$repo" "$root/root/sparq"
git -C "$root/root/sparq" -c advice.detachedHead=false checkout -q --detach "$commit"

# As a fresh root login would: a clean environment, nothing inherited from this shell.
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/sparq && $1"
}
run_ok=0 test_ok=0
step "bash tools/run.sh"
in_root "bash tools/run.sh" && run_ok=1
step "bash tools/test.sh"
in_root "bash tools/test.sh" 2>&1 | tee "$root.test.out" && test_ok=1
summary=$(grep -E '^[0-9]+% tests passed' "$root.test.out" | tail -1 || true)

step "done in $(elapsed)"
result="run.sh $( ((run_ok)) && echo ok || echo FAILED), test.sh: ${summary:-no ctest summary}"
if ((run_ok && test_ok)); then
  echo "fresh-machine-check: PASS (${commit:0:12}, $result, $(elapsed))"
  exit 0
fi
echo "fresh-machine-check: FAIL (${commit:0:12}, $result, $(elapsed))"
exit 1
