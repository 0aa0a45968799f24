# syntax=docker/dockerfile:1
# synthetic-exporter: the agent, with the example checks at /app/checks.
#
#   docker build -t synthetic-exporter .
#   docker run --rm -p 9479:9479 \
#     -e SYNTHETIC_TARGETS__DEFAULT__BASE_URL=https://api.example.com synthetic-exporter
#
# Your own checks: FROM synthetic-exporter + COPY checks/ /app/checks/, or mount a directory
# (the Helm chart mounts a ConfigMap) at /app/checks. See docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim
# Optional extras of the package to install (pyproject.toml): s3 for S3 storage checks.
# --build-arg EXTRAS= builds a smaller image without boto3.
ARG EXTRAS=s3

# Builder: build the project's wheel and install it, with its dependencies, into /opt/venv.
FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY synthetic_exporter/ synthetic_exporter/
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && wheel="$(echo /wheels/synthetic_exporter-*.whl)" \
    && /opt/venv/bin/pip install "${wheel}${EXTRAS:+[$EXTRAS]}" \
    && /opt/venv/bin/synthetic-exporter --version \
    && /opt/venv/bin/python -m pip uninstall --quiet --yes pip setuptools

# Final: the same Python base, the venv and the example checks; no build tools, no root.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="synthetic-exporter" \
      org.opencontainers.image.description="Synthetic-monitoring agent: pytest-like end-to-end checks run on an interval, exported as Prometheus metrics." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="python:3.11-slim"
RUN groupadd --system --gid 65532 synthetic \
    && useradd --system --uid 65532 --gid 65532 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin synthetic \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/synthetic-exporter
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Example checks, read-only for the agent; replace them in a derived image or with a mount.
COPY checks/ /app/checks/
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
