FROM alpine:3.20
ENV A="unterminated
USER app
