ARG REGISTRY=docker.io
ARG TAG=latest
FROM ${REGISTRY}/library/node:latest AS web
USER node
FROM node:${TAG}
USER node
