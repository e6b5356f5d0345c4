# jobq's binaries (jobq, jobq-worker, jobq-dashboard) in one image.
#   docker build -t jobq .
# The worker's video handlers need ffmpeg, which the runtime stage installs.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bins --locked \
 && mkdir /out \
 && cp target/release/jobq target/release/jobq-worker target/release/jobq-dashboard /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /jobq jobq \
 && mkdir /jobq/spool && chown jobq:jobq /jobq/spool
COPY --from=build /out/ /usr/local/bin/
USER jobq
WORKDIR /jobq
ENV RUST_LOG=info
CMD ["jobq-worker"]
