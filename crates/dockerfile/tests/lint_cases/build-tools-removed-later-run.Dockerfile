FROM alpine:3.20
RUN apk add --no-cache gcc
RUN apk del gcc
USER app
