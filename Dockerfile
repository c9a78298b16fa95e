# syntax=docker/dockerfile:1
# metrics-distributor server image. Build: docker build -t metrics-distributor .
# Image defaults (see the README's "Deploy" section): StatsD on 0.0.0.0:8125 UDP and TCP, console sink
# (datadog when DD_API_KEY is set), the drain listener off until --http-auth is given, the admin on the
# container's loopback for the health check, windows kept in /var/lib/metrics-distributor.

# The full image, not slim: it has the C compiler that builds the UDP front-end's recvmmsg reader
# (the bundle carries the compiled addon; the final stage needs no compiler).
FROM node:20-bookworm AS build
WORKDIR /src
ENV TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npx -y pnpm@10.34.9 install --frozen-lockfile
# The same script a bundle is built with outside Docker (and that test/system/bundle.test.ts runs).
RUN deploy/bundle.sh /opt/metrics-distributor

FROM node:20-bookworm-slim
ENV NODE_ENV=production
COPY --from=build /opt/metrics-distributor /opt/metrics-distributor
# The node image's unprivileged user owns the data directory; the volume keeps undelivered windows.
RUN mkdir -p /var/lib/metrics-distributor && chown node:node /var/lib/metrics-distributor
VOLUME /var/lib/metrics-distributor
USER node
WORKDIR /opt/metrics-distributor
EXPOSE 8125/udp 8125/tcp 8080 8126
# SIGTERM flushes the partial window and gives sinks --shutdown-timeout (10 s) to deliver it; give
# `docker stop` more than that: docker stop -t 15.
STOPSIGNAL SIGTERM
# slim has no curl: node's fetch against the admin listener, which the image keeps on loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8126/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Arguments of `docker run IMAGE ...` replace CMD and come after these; the last of a repeated flag wins.
ENTRYPOINT ["node", "/opt/metrics-distributor/bin/metrics-distributor.js", "--statsd-udp", "0.0.0.0:8125", "--statsd-tcp", "0.0.0.0:8125", "--http", "0.0.0.0:8080", "--admin", "127.0.0.1:8126", "--data-dir", "/var/lib/metrics-distributor"]
# Drains need credentials on a non-loopback address: off until `docker run IMAGE --http-auth user:pass`.
CMD ["--http", "off"]
