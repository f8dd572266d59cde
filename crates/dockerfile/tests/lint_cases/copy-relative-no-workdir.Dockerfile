FROM alpine:3.20
COPY app.sh bin/
WORKDIR /srv
COPY config.yml .
USER app
