# syntax=docker/dockerfile:1
# synthetic-exporter: the agent, with the example checks at /app/checks.
#
#   docker build -t synthetic-exporter .
#   docker run --rm -p 9479:9479 \
#     -e SYNTHETIC_TARGETS__DEFAULT__BASE_URL=https://api.example.com synthetic-exporter
#
# Your own checks: FROM synthetic-exporter + COPY checks/ /app/checks/, or mount a directory
# (the Helm chart mounts a ConfigMap) at /app/checks. See docs/deploy.md.
#
# Browser checks (t.page()): --build-arg BROWSER=1 builds the variant with Debian's Chromium
# and the [browser] extra (Playwright); the Helm chart's browser.enabled runs it.

ARG PYTHON_IMAGE=python:3.11-slim
# Optional extras of the package to install (pyproject.toml): s3 for S3 storage checks.
# --build-arg EXTRAS= builds a smaller image without boto3. Each value has its own lock file:
# requirements/runtime.lock (EXTRAS=) and requirements/runtime-s3.lock (EXTRAS=s3).
ARG EXTRAS=s3
# 1: also install Debian's chromium (final stage) and the browser extra, from
# requirements/runtime[-EXTRAS]-browser.lock. Empty (the default): no browser.
ARG BROWSER=

# Builder: install the locked dependencies (hash-checked) into /opt/venv, then build the
# project's wheel with the locked setuptools and install it without dependencies. The demo's
# generated API client (and attrs, its dependency) is left out unless EXTRAS names demo.
FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS
ARG BROWSER
# 1: install only from wheelhouse/ in the build context (scripts/build-image.sh fills it from
# the lock files, so the build needs no network); 0: wheelhouse/ first, then the package index.
ARG PIP_NO_INDEX=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_FIND_LINKS=/wheelhouse \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements/ requirements/
COPY wheelhouse/ /wheelhouse/
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --quiet --require-hashes -r requirements/build.lock \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --quiet --require-hashes \
       -r "requirements/runtime${EXTRAS:+-$EXTRAS}${BROWSER:+-browser}.lock"
COPY pyproject.toml README.md ./
COPY synthetic_exporter/ synthetic_exporter/
RUN /opt/build/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /wheels . \
    && wheel="$(echo /wheels/synthetic_exporter-*.whl)" \
    && /opt/venv/bin/pip install --no-deps "${wheel}" \
    && case ",${EXTRAS}," in *,demo,*) ;; *) rm -r /opt/venv/lib/python3*/site-packages/synthetic_exporter/demo/client ;; esac \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/synthetic-exporter --version \
    && /opt/venv/bin/python -m pip uninstall --quiet --yes pip setuptools

# Final: the same Python base, the venv and the example checks; no build tools, no root.
FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG BROWSER
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="synthetic-exporter" \
      org.opencontainers.image.description="Synthetic-monitoring agent: pytest-like end-to-end checks run on an interval, exported as Prometheus metrics." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
RUN groupadd --system --gid 65532 synthetic \
    && useradd --system --uid 65532 --gid 65532 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin synthetic \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/synthetic-exporter
# The browser variant: Debian's chromium (the agent finds /usr/bin/chromium) and libatomic1
# (Playwright's bundled node driver needs it), unless the base already has them
# (scripts/build-image.sh BROWSER=1 puts them there, so the build needs no network).
RUN if [ -n "${BROWSER}" ] && ! command -v chromium >/dev/null; then \
        apt-get update -qq \
        && apt-get install -y -qq --no-install-recommends chromium fonts-liberation libatomic1 \
        && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Example checks, read-only for the agent; replace them in a derived image or with a mount.
COPY checks/ /app/checks/
# The browser examples (checks/browser_*.py) need Playwright: without it they would not load.
RUN [ -n "${BROWSER}" ] || rm -f /app/checks/browser_*.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SYNTHETIC_CHECKS_PATH=/app/checks \
    SYNTHETIC_STATE_DIR=/var/lib/synthetic-exporter \
    SYNTHETIC_LISTEN=0.0.0.0:9479
USER 65532:65532
EXPOSE 9479
ENTRYPOINT ["synthetic-exporter"]
CMD ["serve"]
