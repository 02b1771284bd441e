package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func archive(t *testing.T, entries ...*tar.Header) *tar.Reader {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := w.Write([]byte(h.Name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return tar.NewReader(&buf)
}

func file(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(name))}
}

// TestReplacesAFileByRenaming is what live update does: the running binary is replaced
// by a new file (new inode) with the archive's mode, and nothing else is left behind.
func TestReplacesAFileByRenaming(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "app", "service")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(old)

	err := extract(archive(t, &tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755}, file("app/service", 0o750)), dir)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(old)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(old); string(got) != "app/service" {
		t.Errorf("content = %q", got)
	}
	if after.Mode().Perm() != 0o750 {
		t.Errorf("mode = %v, want 0750", after.Mode().Perm())
	}
	if os.SameFile(before, after) {
		t.Error("the file was written in place, not replaced")
	}
	if entries, _ := os.ReadDir(filepath.Dir(old)); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestEntriesStayInsideTheDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := extract(archive(t, file("../../escaped", 0o644)), filepath.Join(dir, "root")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "root", "escaped")); err != nil {
		t.Errorf("entry not under the directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escaped")); err == nil {
		t.Error("entry escaped the directory")
	}
}

func TestArguments(t *testing.T) {
	if dir, err := parseArgs([]string{"-C", "/", "-x", "-f", "-"}); err != nil || dir != "/" {
		t.Errorf("Tilt's arguments: %q, %v", dir, err)
	}
	for _, args := range [][]string{nil, {"-c", "-f", "-"}, {"-x", "-f", "archive.tar"}, {"-C", "/", "-x"}} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("parseArgs(%q) accepted", args)
		}
	}
}
