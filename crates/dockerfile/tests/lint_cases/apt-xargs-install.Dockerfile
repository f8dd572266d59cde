FROM debian:13
COPY packages.txt /tmp/
RUN apt-get update \
 && xargs -a /tmp/packages.txt -r apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
USER app
