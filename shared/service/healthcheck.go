package service

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheck asks the service in this container whether it is ready, on its operational
// listener. It reads OPS_ADDR the way BaseConfig does, since it runs in the same
// environment as the service.
func healthcheck() int { return Probe("OPS_ADDR", ":9090", "/readyz") }

// Probe is a container healthcheck for a program FROM scratch (no curl): it GETs path on
// 127.0.0.1 at the port of the listen address in the environment variable addrVar
// (defaultAddr when unset), and returns the exit status: 0 for a 200, else 1 with the
// reason on stderr. Programs that do not run through Main (the login app, the live page)
// call it for their own "healthcheck" argument.
func Probe(addrVar, defaultAddr, path string) int {
	addr := os.Getenv(addrVar)
	if addr == "" {
		addr = defaultAddr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "healthcheck: bad %s: %v\n", addrVar, err)
		return 1
	}
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "healthcheck: %s answered %s\n", path, resp.Status)
		return 1
	}
	return 0
}
