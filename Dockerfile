# The shoal binary alone on an empty image: no shell, no package manager,
# no libc, nothing to patch but shoal itself. Build it with `make image`
# (scripts/image): no base image can be pulled here, so the static binary
# is built on the host (CGO_ENABLED=0) and copied in, together with an
# empty data directory owned by the non-root user. The build context is
# the directory scripts/image prepares, not the repository.
FROM scratch

# The data directory belongs to the uid the node runs as. A named volume
# mounted on /data for the first time takes this ownership, so the node
# can write there without ever being root.
COPY --chown=10001:10001 data /data
# Where 'shoal secrets init' writes the cluster's secrets (docker-compose.yml
# mounts a volume here): owned by the node's uid, like /data.
COPY --chown=10001:10001 secrets /secrets
COPY shoal /shoal

USER 10001:10001
# Every storage node keeps its state in /data unless --data says otherwise.
ENV SHOAL_DATA=/data
VOLUME /data

# 7000: node-to-node RPC; 7946: gossip (TCP and UDP); 8080: a router's HTTP API.
EXPOSE 7000 7946 7946/udp 8080

# `docker run shoal router ...`, `docker run shoal primary --group g1 ...`,
# and the client commands: `docker run -e SHOAL_ROUTER=... shoal ls /`.
ENTRYPOINT ["/shoal"]
CMD ["--help"]
