FROM alpine:3.20
ENV DIRS="a b"
RUN tempDir="$(mktemp -d)" && chown nobody:nobody $tempDir && touch $HOME/x
RUN set -eux; savedAptMark="$(apk info)"; apk del $savedAptMark; for d in $DIRS; do mkdir "$d"; done
RUN buildDeps=' gcc make '; apk add --no-cache --virtual .b $buildDeps; echo $buildDeps
RUN arch=x86_64; url=https://example.org/$arch.tgz; wget -q $url; ./configure ${extra:-} ${jit:+--enable-jit}
USER app
