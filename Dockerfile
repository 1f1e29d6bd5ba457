# Multi-stage build: compile the host and the reference plug-ins, then ship a small runtime image.
FROM rust:1.95-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        cmake libclang-dev libespeak-ng-dev python3-pip && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN scripts/build-plugins.sh intent-keywords prompt-persona barge-in-seed barge-in-smart \
    && cargo build --release -p voice-host \
    && target/release/voice-host models install --dir /models

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        ca-certificates espeak-ng-data libespeak-ng1 libgomp1 curl && rm -rf /var/lib/apt/lists/*
# The compiled-plug-in cache holds native code: a directory only the service user can write.
# A fixed numeric id: Kubernetes checks `runAsNonRoot` against it (deploy/base/deployment.yaml).
RUN useradd --system --uid 10001 --user-group --home /srv voice \
    && install -d -o voice -g voice -m 0700 /srv/cache /srv/cache/voice-host \
        /srv/cache/voice-host/plugins
COPY --from=build /src/target/release/voice-host /usr/local/bin/voice-host
COPY --from=build /src/plugins/dist /srv/plugins
COPY --from=build /models /srv/models
COPY --from=build /src/NOTICE /usr/share/doc/voice-host/NOTICE
COPY --from=build /src/licenses /usr/share/doc/voice-host/licenses
ENV PORT=4010 PLUGIN_DIR=/srv/plugins MODELS_DIR=/srv/models LOG_FORMAT=json XDG_CACHE_HOME=/srv/cache
USER 10001:10001
WORKDIR /srv
EXPOSE 4010
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["sh", "-c", "curl -fsS \"http://127.0.0.1:${PORT}/healthz\" || exit 1"]
ENTRYPOINT ["/usr/local/bin/voice-host"]
