// Command tar is the one tar feature Tilt's live update needs, for images with no shell
// and no tar of their own (FROM scratch): it extracts the archive on standard input into a
// directory, exactly as Tilt runs it in the container:
//
//	tar -C / -x -f -
//
// A file is written beside its destination and renamed over it, so replacing the running
// service's binary works (Linux refuses to open a running executable for writing), and
// only the destination's directory needs to be writable, not the file's old inode.
// Ownership in the archive is ignored: the files belong to whoever runs tar.
//
// Exit status 2 means permission denied, as with GNU tar; Tilt explains that one.
package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func main() {
	dir, err := parseArgs(os.Args[1:])
	if err == nil {
		err = extract(tar.NewReader(os.Stdin), dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tar:", err)
		if errors.Is(err, fs.ErrPermission) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// parseArgs accepts "-C DIR -x -f -" in any order, and nothing else.
func parseArgs(args []string) (dir string, err error) {
	dir, extracting, stdin := ".", false, false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-x":
			extracting = true
		case (a == "-C" || a == "-f") && i+1 < len(args):
			i++
			if a == "-C" {
				dir = args[i]
			} else {
				stdin = args[i] == "-"
			}
		default:
			return "", fmt.Errorf("unsupported argument %q (only: -C DIR -x -f -)", a)
		}
	}
	if !extracting || !stdin {
		return "", errors.New("usage: tar -C DIR -x -f -")
	}
	return dir, nil
}

// extract writes every entry of r under dir. Names are cleaned as if rooted at dir, so an
// entry cannot land outside it ("../../etc/passwd" becomes dir/etc/passwd).
func extract(r *tar.Reader, dir string) error {
	for {
		h, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		target := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			err = writeFile(target, r, h.FileInfo().Mode().Perm())
		case tar.TypeSymlink:
			err = replaceSymlink(target, h.Linkname)
		default:
			fmt.Fprintf(os.Stderr, "tar: skipping %s: unsupported entry type %q\n", h.Name, h.Typeflag)
		}
		if err != nil {
			return fmt.Errorf("extract %s: %w", h.Name, err)
		}
	}
}

func writeFile(target string, content io.Reader, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".tar-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := io.Copy(tmp, content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}

func replaceSymlink(target, linkname string) error {
	if err := os.Remove(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Symlink(linkname, target)
}
