# The public registry proxy (`layerwright proxy`) as an image: a static (musl) binary on an empty base, run as
# nobody. Build context: a directory holding the static `layerwright` binary and an empty `cache/` directory
# (README.md, "Running the public proxy"). TLS roots are built into the binary (webpki-roots): no CA files needed.
FROM scratch
COPY --chmod=0755 layerwright /layerwright
COPY --chown=65534:65534 cache /cache
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/layerwright", "proxy", "--addr", "0.0.0.0:8080", "--cache-dir", "/cache"]
