ARG VERSION=1.23
FROM mirror.example/docker-3p-trusted/golang:${VERSION}
RUN apt-get update && apt-get install -y --no-install-recommends git gcc && rm -rf /var/lib/apt/lists/*
COPY go_workspace.go /builder/
RUN go build -o /builder/go_workspace /builder/go_workspace.go
ENTRYPOINT ["go"]
USER app
