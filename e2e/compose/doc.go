// Package compose checks the repository's docker-compose.yml from outside: it brings the
// stack up under a project name of its own, sends an order through it, and takes it down
// again, leaving no container, volume or network behind.
package compose
