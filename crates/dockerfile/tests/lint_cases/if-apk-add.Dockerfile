FROM alpine:3.20
RUN if [ -f /etc/alpine-release ]; then apk add curl; fi
USER app
