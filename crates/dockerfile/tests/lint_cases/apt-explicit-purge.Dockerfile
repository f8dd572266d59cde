FROM debian:13
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
 && make -C /src install \
 && apt-get purge -y build-essential && rm -rf /var/lib/apt/lists/*
USER app
