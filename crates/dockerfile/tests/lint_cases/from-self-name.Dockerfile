FROM gcc AS gcc
RUN make -C /src
FROM alpine:3.20
COPY --from=gcc /src/app /app
USER app
