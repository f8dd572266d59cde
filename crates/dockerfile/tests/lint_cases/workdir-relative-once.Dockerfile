FROM alpine:3.20
WORKDIR /app
WORKDIR src
WORKDIR build
USER app
