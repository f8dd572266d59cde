FROM debian:13 AS build-base
RUN apt-get update && apt-get install -y --no-install-recommends build-essential
FROM build-base AS builder
RUN make -C /src
FROM debian:13
COPY --from=builder /src/app /usr/local/bin/app
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates
USER app
