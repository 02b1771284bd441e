package flowbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
)

// services are Warren's five services, each built and run as a host process.
var services = []string{"inventory", "order", "email", "sms", "analytics"}

// system is Warren running for the benchmark: RabbitMQ and PostgreSQL in containers,
// the five services as processes of this machine.
type system struct {
	// urls are the services' base URLs, by service; ops their ops listeners' (/metrics).
	urls, ops map[string]string
	// infra is the broker and the database server.
	infra infra
	// logs is the folder with each service's log (<service>.log), shown when b fails.
	logs string
	// pids are the services' process ids; containers the infrastructure's container ids.
	pids       map[string]int
	containers map[string]string

	mu sync.Mutex // guards pids while the services start
}

// startSystem starts the broker and the database server (startInfra) while it builds the
// services, then runs them with env added to the environment each gets. Everything stops
// when b ends.
//
// Processes, not the services' images: `go build` uses the build cache, so the benchmark
// always measures the code in the working tree, and a process costs nothing a container
// would add (no userland proxy, no log driver).
func startSystem(b *testing.B, env map[string]string) *system {
	b.Helper()
	root, err := e2e.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin, logs := b.TempDir(), b.TempDir()
	built := make(chan error, 1)
	go func() { built <- build(root, bin) }()
	in := startInfra(b, root)
	if err := <-built; err != nil {
		b.Fatal(err)
	}

	s := &system{urls: map[string]string{}, ops: map[string]string{}, infra: in, logs: logs, pids: map[string]int{}, containers: in.containers}
	var wg sync.WaitGroup
	var errs []error
	for _, name := range services {
		addr, err := freeAddr()
		if err != nil {
			b.Fatal(err)
		}
		opsAddr, err := freeAddr()
		if err != nil {
			b.Fatal(err)
		}
		vars := map[string]string{
			// The broker's administrator, as the end-to-end suite gives every service;
			// compose gives each its own least-privilege user instead.
			"AMQP_URL":         in.amqpURL,
			"DATABASE_URL":     in.databaseURL(name),
			"HTTP_ADDR":        addr,
			"OPS_ADDR":         opsAddr,
			"SHUTDOWN_TIMEOUT": "5s",
		}
		for k, v := range env {
			vars[k] = v
		}
		wg.Go(func() {
			err := s.run(b, filepath.Join(bin, name), name, vars)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.urls[name] = "http://" + addr
			s.ops[name] = "http://" + opsAddr
			errs = append(errs, err)
		})
	}
	wg.Wait()
	// Registered after the services' cleanups, so it runs before they stop; the logs'
	// folder is removed after both.
	b.Cleanup(func() {
		if b.Failed() {
			for _, name := range services {
				b.Logf("%s (last lines of its log):\n%s", name, tail(filepath.Join(logs, name+".log"), 30))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return s
}

// build compiles the five services into dir, one binary named after each.
func build(root, dir string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, name := range services {
		args = append(args, "./services/"+name)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// run starts one service process with vars as its whole environment (nothing leaks in from
// the benchmark's), waits until its /readyz answers 200, and stops it with SIGTERM when b
// ends.
func (s *system) run(b *testing.B, path, name string, vars map[string]string) error {
	logPath := filepath.Join(s.logs, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(path)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	s.mu.Lock()
	s.pids[name] = cmd.Process.Pid
	s.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	ready := "http://" + vars["OPS_ADDR"] + "/readyz"
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("%s exited during start-up: %v\n%s", name, err, tail(logPath, 20))
		default:
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 90 s\n%s", name, tail(logPath, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// put sends body as JSON to url with PUT, with token as the bearer token, and wants 200.
func put(ctx context.Context, url, body, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %s", url, resp.Status)
	}
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
