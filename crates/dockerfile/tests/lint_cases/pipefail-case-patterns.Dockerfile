FROM debian:13
RUN arch="$(dpkg --print-architecture)"; case "$arch" in amd64 | arm64) flag=1 ;; i386 | x32) flag=2 ;; esac
USER app
