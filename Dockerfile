# zraftd: zraft's replicated key-value daemon, as a container image.
#
#   docker build -t zraft .
#   docker run -p 8001:8001 -e ZRAFT_ID=1 -e ZRAFT_INITIAL_CLUSTER=1=127.0.0.1:7001 zraft
#
# Both stages start FROM debian:bookworm-slim, so one base image is all a
# build needs: pulled from a registry, or made locally with
# scripts/docker-base-image.sh where none is reachable (docs/docker.md). The
# build stage adds the Debian 12 toolchain on top of it with apt.
#
# Configuration is zraftd's own: every key is an environment variable
# ZRAFT_<KEY> (ZRAFT_ID, ZRAFT_RAFT_ADDR, ZRAFT_HTTP_ADDR,
# ZRAFT_INITIAL_CLUSTER, ...), a flag --<key-name> (arguments after the image
# name), or a JSON file (--config FILE).
ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- build
FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config \
      libzmq3-dev libcjson-dev libmicrohttpd-dev libgnutls28-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what zraftd is built from: with no test/ (Criterion) and no bench/,
# CMake configures neither, and edits there do not invalidate this layer.
COPY CMakeLists.txt ./
COPY include include
COPY core core
COPY storage storage
COPY transport transport
COPY actors actors
COPY server server
# Two parallel jobs at most: this is a small machine shared with others.
ARG JOBS=2
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
RUN cmake --build build --target zraftd -- -j"${JOBS}" \
 && strip -o /zraftd build/server/zraftd

# ------------------------------------------------------------------ run
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only; the health check needs nothing more than bash
# (openssl for HTTPS, and to make the secure variant's CA and certificates:
# server/zraft-secure-start).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 libcjson1 libmicrohttpd12 \
      libgnutls30 openssl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 zraft \
 && useradd --system --uid 10001 --gid zraft --home-dir /var/lib/zraft \
      --no-create-home --shell /usr/sbin/nologin zraft \
 && install -d -o zraft -g zraft -m 0750 /var/lib/zraft \
 && install -d -o zraft -g zraft -m 0700 /var/lib/zraft-secrets
# Health check without curl or wget (neither is in a slim image): bash's
# /dev/tcp sends GET /healthz to the address zraftd binds.
COPY server/zraft-healthcheck /usr/local/bin/zraft-healthcheck
COPY server/zraft-secure-start /usr/local/bin/zraft-secure-start
COPY --from=build /zraftd /usr/local/bin/zraftd

# Defaults for a container: data in the volume, HTTP bound on every
# interface. A cluster sets ZRAFT_ID, ZRAFT_RAFT_ADDR, ZRAFT_HTTP_ADDR (the
# address followers redirect clients to, e.g. the service name) and
# ZRAFT_INITIAL_CLUSTER per node.
# The Redis-protocol port is off unless ZRAFT_RESP_ADDR is set (the address
# -MOVED replies name); it then binds ZRAFT_RESP_LISTEN.
ENV ZRAFT_DATA_DIR=/var/lib/zraft \
    ZRAFT_HTTP_LISTEN=0.0.0.0:8001 \
    ZRAFT_RAFT_LISTEN=0.0.0.0:7001 \
    ZRAFT_RESP_LISTEN=0.0.0.0:6379
VOLUME ["/var/lib/zraft"]
EXPOSE 7001 8001 6379
USER zraft
WORKDIR /var/lib/zraft
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/zraft-healthcheck"]
# zraftd is PID 1 and gets SIGTERM itself (no shell in between): it blocks
# the signal in every thread and sigwaits for it, so the kernel delivers it
# even to a PID 1, and it stops cleanly with exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/zraftd"]
