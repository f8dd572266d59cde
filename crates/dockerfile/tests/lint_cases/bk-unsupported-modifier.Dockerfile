FROM alpine:3.20
ARG X=${a:b}
USER app
