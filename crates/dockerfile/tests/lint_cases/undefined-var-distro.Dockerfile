FROM alpine:3.20
ENV PATH=$PAHT:/app/bin
USER app
