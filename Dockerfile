# Production image: a static sensorgate binary on a distroless base, running
# as a non-root user. Build: docker build -t sensorgate .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sensorgate ./cmd/sensorgate \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sensorgate /usr/local/bin/sensorgate
# state_dir (dead letters, later the spool and the registry) must persist.
COPY --from=build --chown=nonroot:nonroot /out/state /var/lib/sensorgate
VOLUME ["/var/lib/sensorgate"]
USER nonroot:nonroot
# The image has no shell: the binary asks its own /healthz (http.listen of
# the config) and exits 0 or 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/sensorgate", "healthcheck", "-c", "/etc/sensorgate/sensorgate.yaml", "-timeout", "4s"]
ENTRYPOINT ["/usr/local/bin/sensorgate"]
CMD ["run", "-c", "/etc/sensorgate/sensorgate.yaml"]
