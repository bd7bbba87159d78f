# Conveniences; `go build` and `go test ./...` need none of this.
IMAGE ?= shoal:latest

.PHONY: image
# image builds the container image (see Dockerfile and scripts/image).
image:
	IMAGE=$(IMAGE) scripts/image
