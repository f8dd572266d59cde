FROM alpine:3.20
RUN case "$(uname -m)" in x86_64) apk add foo ;; esac
USER app
