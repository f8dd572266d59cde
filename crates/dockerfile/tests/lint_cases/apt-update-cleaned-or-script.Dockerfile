FROM debian:13
RUN apt-get update && apt-get purge -y imagemagick && rm -rf /var/lib/apt/lists/*
RUN apt-get update && bash /tmp/setup.sh
USER app
