# syntax=docker/dockerfile:1

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
 && cp target/release/portcullis /portcullis

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin portcullis \
 && mkdir -p /var/lib/portcullis \
 && chown 10001 /var/lib/portcullis
COPY --from=builder /portcullis /usr/local/bin/portcullis
USER 10001
# Writable working directory for the default SQLite database file.
WORKDIR /var/lib/portcullis
EXPOSE 4444 4445
ENTRYPOINT ["portcullis"]
CMD ["serve", "all"]
