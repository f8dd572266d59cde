FROM debian:13
RUN apt-get update && apt-get reinstall -y ca-certificates && rm -rf /var/lib/apt/lists/*
USER app
