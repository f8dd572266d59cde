FROM alpine:3.20
RUN apk add --no-cache gcc musl-dev && make -C /src
USER app
