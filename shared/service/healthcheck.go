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
func healthcheck() int {
	addr := os.Getenv("OPS_ADDR")
	if addr == "" {
		addr = ":9090"
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck: bad OPS_ADDR:", err)
		return 1
	}
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + "/readyz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck: /readyz answered", resp.Status)
		return 1
	}
	return 0
}
