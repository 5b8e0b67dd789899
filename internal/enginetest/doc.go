// Package enginetest runs a real Docker-API container engine, podman's API
// service with runc, for end-to-end tests of the DOCKER environment: a job
// server asks it, as it would ask Docker, to pull a worker image and start
// containers from it. Each engine is the test's own, on Linux only: its
// storage, its configuration, runc's state and its socket live in a
// directory of its own, so it shares nothing with other engines on the
// machine, and none of its containers, processes or mounts outlives the
// test.
package enginetest
