#!/usr/bin/env bash
# Builds the Dockerfile without a Docker engine or a container registry, and prints the image name.
#
#   1. base: mmdebstrap makes a minimal Debian (BASE_SUITE) with Python from the Debian mirror;
#      buildah imports it as localhost/debian-python:BASE_SUITE. The root filesystem tarball is
#      cached in IMAGE_CACHE_DIR and made again only when the package list changes.
#   2. wheelhouse/: pip downloads the wheels of requirements/build.lock and the runtime lock on
#      the host (hash-checked, with the host's pip configuration: index, CA bundle).
#   3. buildah builds the Dockerfile (vfs storage, chroot isolation) with
#      --build-arg PYTHON_IMAGE=localhost/debian-python:BASE_SUITE and PIP_NO_INDEX=1, so pip in
#      the build installs from wheelhouse/ only and needs no network.
#
# buildah keeps its images in IMAGE_CACHE_DIR/storage (not the system's store); use the same
# options to run the image, for example:
#   buildah --root .cache/image/storage --runroot .cache/image/run --storage-driver vfs \
#     from --name se localhost/synthetic-exporter:dev
#
# Environment: IMAGE (default localhost/synthetic-exporter:dev, or :dev-browser with BROWSER),
#   EXTRAS (default s3: the Dockerfile's default; empty for the image without boto3), BROWSER
#   (1: the browser variant, with Debian's chromium in the base and the browser extra's lock),
#   BASE_SUITE (default bookworm, whose Python 3.11 the lock files are compiled for),
#   BASE_MIRROR (default: this machine's Debian sources), IMAGE_CACHE_DIR (default
#   .cache/image), PYTHON (default: .venv/bin/python, else python3) runs pip.
# Needs root (mmdebstrap and buildah's chroot isolation) and Debian's buildah and mmdebstrap
# (scripts/install-system-deps.sh).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
browser="${BROWSER:-}"
image="${IMAGE:-localhost/synthetic-exporter:dev${browser:+-browser}}"
extras="${EXTRAS-s3}"
suite="${BASE_SUITE:-bookworm}"
cache="${IMAGE_CACHE_DIR:-$root/.cache/image}"
if [ -n "${PYTHON:-}" ]; then
  python="$PYTHON"
elif [ -x "$root/.venv/bin/python" ]; then
  python="$root/.venv/bin/python"
else
  python="python3"
fi
flavour="debian-python${browser:+-browser}"
base="localhost/$flavour:$suite"
# What the Dockerfile runs in its stages: python -m venv (python3-venv), groupadd/useradd (passwd);
# the browser variant's Chromium and libatomic1 for Playwright's node driver (the Dockerfile skips
# its apt-get when chromium is there).
browser_packages="chromium,fonts-liberation,libatomic1"
base_packages="python3,python3-venv,python-is-python3,passwd${browser:+,$browser_packages}"

log() { echo "build-image.sh: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "needs root (mmdebstrap, buildah --isolation chroot)"
  exit 1
fi
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || {
    log "$tool is missing: bash scripts/install-system-deps.sh"
    exit 1
  }
done

mkdir -p "$cache"
buildah=(buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs)

# 1. The base image, from the Debian mirror.
if [ -n "${BASE_MIRROR:-}" ]; then
  mirror="$BASE_MIRROR"
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=/etc/apt/sources.list.d/debian.sources
else
  mirror="http://deb.debian.org/debian"
fi
stamp="$(printf '%s %s %s' "$suite" "$base_packages" "$mirror" | cksum | cut -d' ' -f1)"
rootfs="$cache/$flavour-$suite-$stamp.tar"
if [ ! -s "$rootfs" ]; then
  log "making the base root filesystem ($suite: $base_packages) with mmdebstrap"
  rm -rf "$cache/$flavour-$suite"-*.tar  # mmdebstrap made a directory (no .tar suffix given)
  mmdebstrap --quiet --variant=minbase --include="$base_packages" \
    --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    "$suite" "$rootfs.partial.$$" "$mirror"
  mv -f "$rootfs.partial.$$" "$rootfs"
  "${buildah[@]}" rmi --force "$base" >/dev/null 2>&1 || true
fi
# The image made from which tarball: "tarball image-id", checked against the store.
imported="$cache/$flavour-$suite.imported"
image_id="$("${buildah[@]}" inspect --type image --format '{{.FromImageID}}' "$base" 2>/dev/null || true)"
if [ -z "$image_id" ] || [ "$(cat "$imported" 2>/dev/null)" != "$(basename "$rootfs") $image_id" ]; then
  log "importing $(basename "$rootfs") as $base"
  "${buildah[@]}" rmi --force "$base" >/dev/null 2>&1 || true
  container="$("${buildah[@]}" from scratch)"
  trap '"${buildah[@]}" rm "$container" >/dev/null 2>&1 || true' EXIT
  "${buildah[@]}" add "$container" "$rootfs" / >/dev/null
  "${buildah[@]}" config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd '["python3"]' "$container"
  "${buildah[@]}" commit --quiet --rm "$container" "$base" >/dev/null
  trap - EXIT
  image_id="$("${buildah[@]}" inspect --type image --format '{{.FromImageID}}' "$base")"
  echo "$(basename "$rootfs") $image_id" >"$imported"
fi

# 2. The wheelhouse, from the lock files (pip skips wheels it already has, after a hash check).
lock="$root/requirements/runtime${extras:+-$extras}${browser:+-browser}.lock"
[ -f "$lock" ] || {
  log "no lock file for EXTRAS=$extras: $lock"
  exit 1
}
log "downloading the wheels of requirements/build.lock and $(basename "$lock") into wheelhouse/"
"$python" -m pip download --quiet --disable-pip-version-check --require-hashes \
  --only-binary=:all: --python-version 3.11 --implementation cp --dest "$root/wheelhouse" \
  -r "$root/requirements/build.lock" -r "$lock" 2> >(grep -v 'is ignored: it is neither' >&2)

# 3. The image. Images of earlier builds under the same name are dangling afterwards: prune them.
log "building $image on $base"
revision="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
"${buildah[@]}" build --isolation chroot --layers=false --pull=never \
  --build-arg PYTHON_IMAGE="$base" --build-arg EXTRAS="$extras" --build-arg BROWSER="$browser" \
  --build-arg PIP_NO_INDEX=1 \
  --build-arg REVISION="$revision" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --tag "$image" --file "$root/Dockerfile" "$root" >&2
"${buildah[@]}" rmi --prune >/dev/null 2>&1 || true
echo "$image"
