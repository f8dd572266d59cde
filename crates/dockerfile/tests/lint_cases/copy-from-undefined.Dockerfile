FROM golang:1.23 AS builder
WORKDIR /src
RUN go build -o /out/app .
FROM alpine:3.20
COPY --from=buidler /out/app /usr/local/bin/app
COPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/nginx/
COPY --from=0 /out/app /usr/local/bin/app0
USER app
