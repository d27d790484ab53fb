#!/usr/bin/env bash
# Build (once) and cache the root filesystem that lab hosts boot from:
#   rootfs.sh [debian12|ubuntu2404]      -> prints the tarball's path
# (scripts/lab-rootfs runs it from a checkout; the lab provider runs it from
# the installed package.)
# The tarball lives in $INFRAWATCH_LAB_CACHE (default /var/cache/infrawatch-lab)
# and is rebuilt only when this script changes (its hash is in the name).
# Needs root, debootstrap and a reachable mirror: for Debian, this machine's
# own apt sources' unless LAB_DEBIAN_MIRROR is set; for Ubuntu,
# LAB_UBUNTU_MIRROR (default http://archive.ubuntu.com/ubuntu).
set -euo pipefail

flavour="${1:-debian12}"
cache="${INFRAWATCH_LAB_CACHE:-/var/cache/infrawatch-lab}"
mkdir -p "$cache"

case "$flavour" in
    debian12) suite=bookworm; family=debian; components=main ;;
    # fail2ban and apt-listchanges are in universe on Ubuntu.
    ubuntu2404) suite=noble; family=ubuntu; components=main,universe ;;
    *) echo "lab-rootfs: unknown flavour '$flavour' (known: debian12, ubuntu2404)" >&2; exit 2 ;;
esac

# What a lab host carries beyond debootstrap's minimal base: systemd as PID 1,
# sshd, Python for Ansible (with python3-apt for its apt module), and the
# packages the hardening roles install, so that a run needs no network inside
# the host (the roles still install them on a fresh cloud host).
packages="systemd-sysv dbus libpam-systemd openssh-server python3 python3-apt sudo \
iproute2 ca-certificates tzdata ufw fail2ban python3-systemd unattended-upgrades \
apt-listchanges procps less"

recipe=$(sha256sum "$0" | cut -c1-12)
tarball="$cache/$flavour-$recipe.tar"
if [ -s "$tarball" ]; then
    echo "$tarball"
    exit 0
fi

if [ "$family" = debian ]; then
    mirror="${LAB_DEBIAN_MIRROR:-}"
    if [ -z "$mirror" ]; then
        mirror=$(grep -rhoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
            | awk '{print $2}' | head -n 1 || true)
    fi
    if [ -z "$mirror" ]; then
        echo "lab-rootfs: no Debian mirror in this machine's apt sources; set LAB_DEBIAN_MIRROR" >&2
        exit 1
    fi
else
    mirror="${LAB_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}"
fi
for tool in debootstrap tar curl dpkg-deb sha256sum; do
    command -v "$tool" >/dev/null || { echo "lab-rootfs: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d "$cache/build-$flavour.XXXXXX")
trap 'umount -l "$work/root/proc" "$work/root/sys" "$work/root/dev" 2>/dev/null || true; rm -rf "$work"' EXIT
root="$work/root"
bootstrap=(debootstrap --variant=minbase --include=ca-certificates --components="$components")
if [ "$family" = ubuntu ]; then
    # Debian has no package of Ubuntu's archive keys: the keyring package is
    # fetched from the archive and checked against the hash pinned here
    # (noble's ubuntu-keyring), so debootstrap verifies what it downloads.
    keyring_deb="pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb"
    keyring_sha256=36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8
    curl -fsS --retry 3 -o "$work/keyring.deb" "$mirror/$keyring_deb"
    echo "$keyring_sha256  $work/keyring.deb" | sha256sum -c --quiet - >&2
    dpkg-deb -x "$work/keyring.deb" "$work/keyring"
    bootstrap+=(--keyring="$work/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg")
fi
echo "lab-rootfs: debootstrap $suite into $root (a few minutes, once)" >&2
if [ "$family" = ubuntu ] && [ ! -e "/usr/share/debootstrap/scripts/$suite" ]; then
    # Debian 12's debootstrap predates noble; Ubuntu's suites share one script.
    "${bootstrap[@]}" "$suite" "$root" "$mirror" /usr/share/debootstrap/scripts/jammy >&2
else
    "${bootstrap[@]}" "$suite" "$root" "$mirror" >&2
fi

# Inside the chroot: no daemons start while packages install.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
pockets="$suite"
if [ "$family" = ubuntu ]; then
    # As an Ubuntu cloud image has them: the release's fixes come from the
    # -updates and -security pockets (noble's own fail2ban does not start on
    # its Python 3.12; the -updates one does).
    pockets="$suite $suite-updates $suite-security"
    for pocket in $pockets; do
        printf 'deb %s %s %s\n' "$mirror" "$pocket" "${components//,/ }"
    done > "$root/etc/apt/sources.list"
    chroot "$root" apt-get update -q >&2
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -y -q dist-upgrade >&2
fi
# shellcheck disable=SC2086
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >&2
chroot "$root" apt-get clean
umount -l "$root/proc" "$root/sys" "$root/dev"
rm -f "$root/usr/sbin/policy-rc.d"

# A host is made per boot: its own host keys, machine id and hostname.
rm -f "$root"/etc/ssh/ssh_host_* "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
: > "$root/etc/machine-id"
rm -rf "$root"/var/lib/apt/lists/*
# No package lists, and none fresh: Ansible's cache_valid_time must update them.
touch -d @0 "$root/var/lib/apt/lists"
# The login a cloud image gives: a user with passwordless sudo (root logs in
# with no key; the hardening refuses root logins anyway).
chroot "$root" useradd --create-home --shell /bin/bash --groups sudo admin
printf 'admin ALL=(ALL) NOPASSWD:ALL\n' > "$root/etc/sudoers.d/90-cloud-admin"
chmod 0440 "$root/etc/sudoers.d/90-cloud-admin"
# The mirror this machine uses; a lab host reaches it only through the
# lab's apt proxy on the bridge (each host is given the proxy when made).
for pocket in $pockets; do
    printf 'deb %s %s %s\n' "$mirror" "$pocket" "${components//,/ }"
done > "$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*
# Services a container does not need and that slow its boot.
# Fail2Ban comes configured for log files a journald-only host does not
# write; the fail2ban role configures and enables it.
rm -f "$root/etc/systemd/system/multi-user.target.wants/fail2ban.service"
for unit in systemd-timesyncd.service e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

tar -C "$root" -cf "$tarball.partial" .
mv "$tarball.partial" "$tarball"
echo "$tarball"
