# InfraWatch in a container: `infrawatch serve` by default, `infrawatch
# worker` with another command. Multi-stage: the build stage has pip and a
# compiler's leftovers; the image has only the virtual environment.
#
# BASE: any Debian-family image with Python 3.11+. The default is the
# official slim image; CI builds from a Debian 12 root filesystem it
# imported itself (no registry there), where Python's venv comes from apt.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# A base without a working `python3 -m venv` (plain Debian) gets Debian's.
RUN python3 -m venv /tmp/probe-venv 2>/dev/null && rm -rf /tmp/probe-venv || \
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends python3 python3-venv ca-certificates \
     && rm -rf /var/lib/apt/lists/*)
RUN python3 -m venv /opt/infrawatch
COPY pyproject.toml README.md /src/
COPY src /src/src
# A CA to trust while fetching (a proxy in the way; see deploy/build-ca).
COPY deploy/build-ca/ /build-ca/
RUN if [ -s /build-ca/ca.crt ]; then export PIP_CERT=/build-ca/ca.crt; fi \
 && /opt/infrawatch/bin/pip install --no-cache-dir --quiet --upgrade pip \
 && /opt/infrawatch/bin/pip install --no-cache-dir --quiet /src

FROM ${BASE}
RUN python3 -c "import venv" 2>/dev/null || \
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends python3 ca-certificates && rm -rf /var/lib/apt/lists/*)
# ping checks need the raw-socket capability or unprivileged ICMP (sysctl
# net.ipv4.ping_group_range, set in the compose file); ssh for provisioning.
RUN (command -v ssh >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends openssh-client \
        && rm -rf /var/lib/apt/lists/*)) \
 && (getent passwd infrawatch >/dev/null || useradd --system --uid 10001 --user-group \
        --home-dir /var/lib/infrawatch --create-home --shell /usr/sbin/nologin infrawatch)
COPY --from=build /opt/infrawatch /opt/infrawatch
ENV PATH=/opt/infrawatch/bin:$PATH \
    INFRAWATCH_DATA_DIR=/var/lib/infrawatch \
    INFRAWATCH_PORT=8000 \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/infrawatch
USER infrawatch
WORKDIR /var/lib/infrawatch
EXPOSE 8000
# The port (INFRAWATCH_PORT) is the health check's too; a host-network run
# (docker run --network host) picks a free one.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('INFRAWATCH_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4).status != 200)"]
CMD ["sh", "-c", "exec infrawatch serve --host 0.0.0.0 --port \"$INFRAWATCH_PORT\""]
