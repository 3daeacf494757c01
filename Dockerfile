# Multi-stage build of cloakroomd and cloakctl into a small image.
#
#   docker build -t cloakroom .
#   docker run --rm -p 6379:6379 -p 7400:7400 cloakroom
#
# Every cloakroomd flag can be set as CLOAKROOM_<FLAG> in the environment;
# the image binds all interfaces (a container is reached through its ports)
# and advertises its host name to the other nodes.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/cloakroomd ./cmd/cloakroomd \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/cloakctl ./cmd/cloakctl

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 cloakroom
COPY --from=build /out/cloakroomd /out/cloakctl /usr/local/bin/
USER cloakroom
ENV CLOAKROOM_ADDR=0.0.0.0:7400 \
    CLOAKROOM_RESP_ADDR=0.0.0.0:6379 \
    CLOAKROOM_HTTP_ADDR=0.0.0.0:7480 \
    CLOAKROOM_GOSSIP_ADDR=0.0.0.0:7946
EXPOSE 7400 6379 7480 7946/tcp 7946/udp
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
  CMD ["cloakctl", "--addr", "127.0.0.1:7400", "ping"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["cloakroomd"]
