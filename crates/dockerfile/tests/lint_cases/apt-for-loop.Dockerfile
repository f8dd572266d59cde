FROM debian:13
RUN apt-get update && for p in curl git; do apt-get install -y --no-install-recommends "$p"; done \
 && rm -rf /var/lib/apt/lists/*
USER app
