FROM debian:13
ARG TOOLS_VERSION=4
ARG EXTRA_DEPS="build-essential curl"
ARG OPAQUE_DEPS
ENV CURL_VERSION=8.14.1-2
RUN buildDeps=' \
		ca-certificates \
		git \
	' \
	set -x \
	&& apt-get update && apt-get install -y --no-install-recommends $buildDeps \
	&& apt-get install -y --no-install-recommends "azure-functions-core-tools-${TOOLS_VERSION}" curl=$CURL_VERSION \
	&& apt-get install -y --no-install-recommends $EXTRA_DEPS \
	&& apt-get install -y --no-install-recommends $OPAQUE_DEPS "$(cat /tmp/list)" \
	&& rm -rf /var/lib/apt/lists/*
USER app
