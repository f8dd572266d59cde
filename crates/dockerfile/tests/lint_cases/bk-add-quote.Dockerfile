FROM alpine:3.20
ADD 'a b /x
USER app
