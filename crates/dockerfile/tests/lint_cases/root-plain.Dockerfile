FROM alpine:3.20
CMD ["sh"]
