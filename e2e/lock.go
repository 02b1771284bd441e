//go:build linux || darwin || freebsd

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockHost takes a lock that whole-system suites hold on this Docker host while their
// system runs, and returns its release. `go test ./...` runs the e2e and e2e/compose
// packages in parallel, and two complete systems at once would overload a 2-core machine
// (and make ReapLeftovers unsafe). The lock is a file in the temporary folder; the kernel
// releases it when the process dies, so a killed run never leaves it held.
func LockHost() (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "warren-e2e.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
