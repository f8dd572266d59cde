FROM debian:13
RUN apt-get update && xargs -rt apt-get install -y --no-install-recommends < /deps.txt && apt-get install -y --no-install-recommends curl 2>/dev/null && rm -rf /var/lib/apt/lists/*
USER app
