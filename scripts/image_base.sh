#!/bin/sh
# Make a local stand-in for the Dockerfile's base image, docker.io/library/python:3.11-slim-bookworm,
# from Debian's own packages, for machines that reach no container registry. Run as root:
#
#     scripts/image_base.sh CACHE_DIR
#
# The root file system (debootstrap, about 70 s) is kept as CACHE_DIR/base-KEY.tar, KEY being
# this script's hash, so a changed recipe makes a new base; the image is imported into podman's
# storage only when the one there came from another recipe. Like the official image: Debian
# bookworm's Python 3.11, with `python` and `pip` in /usr/local/bin (a venv made there).
set -eu
cache=$1
name=docker.io/library/python:3.11-slim-bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
key=$(sha256sum "$0" | cut -c1-16)
tarball=$cache/base-$key.tar

if [ ! -f "$tarball" ]; then
    mkdir -p "$cache"
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
        bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    chroot "$rootfs" python3 -m venv /usr/local
    # pip inside the build reaches the package index the way this machine does.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    if [ -f /etc/pip.conf ]; then cp /etc/pip.conf "$rootfs/etc/pip.conf"; fi
    rm -rf "$rootfs/var/cache/apt/archives"/*.deb "$rootfs/var/lib/apt/lists"/*
    tar -C "$rootfs" -c . >"$tarball.partial"
    mv "$tarball.partial" "$tarball"
fi

if [ "$(podman image inspect --format '{{index .Labels "userservice.base"}}' "$name" 2>/dev/null)" != "$key" ]; then
    podman import --quiet \
        --change "LABEL userservice.base=$key" \
        --change "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["python3"]' \
        "$tarball" "$name" >/dev/null
fi
echo "$name (base $key, from $tarball)"
