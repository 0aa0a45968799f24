#!/usr/bin/env bash
# Installs the Debian packages the tests use: a real Prometheus (and promtool), Alertmanager
# (and amtool), blackbox_exporter for the benchmark, Chromium for the status page test, and
# buildah and mmdebstrap to build and run the container image without Docker (tests/test_image.py,
# scripts/build-image.sh; buildah brings uidmap; vfs storage and chroot isolation need neither
# fuse-overlayfs nor an OCI runtime), tinyproxy for the per-target proxy tests
# (tests/http/test_proxy.py), nginx, a real TLS server for the targets' TLS options (mutual
# TLS, server names, TLS versions: tests/http/test_tls_options.py), and util-linux's unshare
# (essential in Debian; listed to say so), with which tests/http/test_network_dual_stack.py gives
# the agent a hosts file of its own in a private mount namespace. Idempotent: does nothing when
# they are already there. With the argument `browser`, only chromium (make browser-deps: what
# the demo's browser check needs).
set -euo pipefail
packages=(prometheus prometheus-alertmanager prometheus-blackbox-exporter chromium buildah mmdebstrap
  tinyproxy nginx util-linux)
case "${1:-}" in
  "") ;;
  browser) packages=(chromium) ;;
  *) echo "usage: $0 [browser]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
