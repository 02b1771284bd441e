package flowbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	docker "github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// On two cores the flow is bound by CPU, so where the CPU goes is where the time goes. The
// meter reads the CPU time each part of the system has used so far: each service process
// (/proc), the broker's and the database's containers (Docker's stats), the benchmark
// itself (load, collector and SMTP sink), and the whole machine (/proc/stat), whose
// remainder is everything else running on it.

// userHZ is the unit of /proc's CPU times, fixed at 100 per second by Linux's ABI.
const userHZ = 100

type cpuMeter struct {
	pids       map[string]int    // service → process id
	containers map[string]string // name → container id
	docker     *testcontainers.DockerClient
}

// cpuSample is the CPU time used so far, by part; "machine" is every process's.
type cpuSample map[string]time.Duration

func newCPUMeter(ctx context.Context, pids map[string]int, containers map[string]string) (*cpuMeter, error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return &cpuMeter{pids: pids, containers: containers, docker: cli}, nil
}

func (m *cpuMeter) sample(ctx context.Context) (cpuSample, error) {
	s := cpuSample{}
	for name, pid := range m.pids {
		t, err := processCPU(pid)
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", name, err)
		}
		s[name] = t
	}
	for name, id := range m.containers {
		t, err := m.containerCPU(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("cpu of %s: %w", name, err)
		}
		s[name] = t
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, fmt.Errorf("cpu of the benchmark: %w", err)
	}
	s["benchmark"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	t, err := machineCPU()
	if err != nil {
		return nil, err
	}
	s["machine"] = t
	return s, nil
}

// processCPU is the user and system time of process pid (fields 14 and 15 of its stat).
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it are plain.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return ticks(fields[11]) + ticks(fields[12]), nil
}

// machineCPU is the busy time of every CPU: all of /proc/stat's first line but idle and iowait.
func machineCPU() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy time.Duration
	for i, v := range fields[1:min(len(fields), 9)] {
		if i != 3 && i != 4 {
			busy += ticks(v)
		}
	}
	return busy, nil
}

func ticks(v string) time.Duration {
	n, _ := strconv.ParseInt(v, 10, 64)
	return time.Duration(n) * time.Second / userHZ
}

// containerCPU is the CPU time of every process of container id, from its cgroup.
func (m *cpuMeter) containerCPU(ctx context.Context, id string) (time.Duration, error) {
	res, err := m.docker.ContainerStats(ctx, id, docker.ContainerStatsOptions{})
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var stats struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
	}
	if err := json.NewDecoder(res.Body).Decode(&stats); err != nil {
		return 0, fmt.Errorf("container stats: %w", err)
	}
	return time.Duration(stats.CPU.Usage.Total), nil
}

// printCPU writes what each part used between before and after, over wall, per order, and
// returns Warren's CPU time per order: its services', broker's and database's. That figure
// varies less from run to run than orders/s, which also depends on what else the machine
// runs.
func printCPU(w io.Writer, before, after cpuSample, wall time.Duration, orders int) (warrenPerOrder time.Duration) {
	fmt.Fprintf(w, "\nCPU during the max-rate phase (%.1f s, %d orders)\n", wall.Seconds(), orders)
	fmt.Fprintf(w, "  %-46s %8s %8s %9s\n", "who", "cpu s", "cores", "ms/order")
	row := func(name string, d time.Duration) {
		fmt.Fprintf(w, "  %-46s %8.1f %8.2f %9.2f\n", name, d.Seconds(), d.Seconds()/wall.Seconds(), ms(d/time.Duration(orders)))
	}
	var warren time.Duration
	for _, name := range append(append([]string{}, services...), "rabbitmq", "postgres") {
		d := after[name] - before[name]
		warren += d
		row(name, d)
	}
	row("Warren (the above)", warren)
	bench := after["benchmark"] - before["benchmark"]
	row("benchmark (load, span collector, SMTP sink)", bench)
	machine := after["machine"] - before["machine"]
	row("everything else on the machine", machine-warren-bench)
	return warren / time.Duration(orders)
}
