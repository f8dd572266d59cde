FROM alpine:3.20
ARG ALPACA_VERSION=v2.0.9
ARG ALPACA_URL=https://github.com/samuong/alpaca/releases/download/$ALPACA_VERSION/alpaca_linux-amd64
ADD --chmod=755 $ALPACA_URL /usr/local/bin/alpaca
USER app
