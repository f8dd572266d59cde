FROM alpine:3.20
RUN apk add --no-cache gcc && make -C /src
RUN apk del gcc
USER app
