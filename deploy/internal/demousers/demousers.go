// Package demousers is the users file Warren's demo identities live in: written by
// `warrenctl secrets init` into the login app's secrets volume, read by the login app
// (deploy/cmd/warren-login) to check a password and find a user's roles, and by
// `warrenctl token` to log in as one of them. No password is in the repository: the file
// exists only in that volume.
package demousers

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// FileName is the users file's name in the login app's secrets volume.
const FileName = "users.json"

// Roles the services authorise on (the access token's top-level "roles" claim).
const (
	RoleCustomer = "customer"
	RoleStaff    = "staff"
)

// ErrUnknownUser is returned by File.User for a name the file does not hold.
var ErrUnknownUser = errors.New("no such user")

// User is one identity of the users file.
type User struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	Email    string   `json:"email,omitempty"`
}

// File is the users file's content.
type File struct {
	Users []User `json:"users"`
}

// Demo is the fixed list of demo identities (AUTH-CONTRACT.md), without passwords:
// secrets init generates those.
func Demo() []User {
	return []User{
		{Name: "alice", Roles: []string{RoleCustomer}, Email: "alice@example.com"},
		{Name: "bob", Roles: []string{RoleCustomer}, Email: "bob@example.com"},
		{Name: "sam", Roles: []string{RoleStaff}, Email: "sam@example.com"},
	}
}

// LoadCustomers is how many load-test customers the users file holds: the order service's
// quotas are per customer (2 orders/s, 20 pending), so a load of 50 orders/s needs 25 of
// them at least; warren-load (deploy/cmd/warren-load) logs in as LOAD_CUSTOMERS of them.
const LoadCustomers = 40

// LoadCustomerName is the name of the i-th load-test customer (from 1): load-01.
func LoadCustomerName(i int) string { return fmt.Sprintf("load-%02d", i) }

// LoadTest is the list of load-test customers (LoadCustomers of them), without
// passwords: secrets init generates those. They are customers like alice and bob, under
// the same quotas.
func LoadTest() []User {
	users := make([]User, LoadCustomers)
	for i := range users {
		name := LoadCustomerName(i + 1)
		users[i] = User{Name: name, Roles: []string{RoleCustomer}, Email: name + "@load.example.com"}
	}
	return users
}

// PasswordVar is the variable that chooses a demo user's password: DEMO_ALICE_PASSWORD.
func PasswordVar(name string) string {
	return "DEMO_" + strings.ToUpper(name) + "_PASSWORD"
}

// Load reads and checks a users file.
func Load(path string) (File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("users file: %w", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("users file %s: %w", path, err)
	}
	for _, u := range f.Users {
		if u.Name == "" || u.Password == "" {
			return File{}, fmt.Errorf("users file %s: a user without a name or password", path)
		}
	}
	return f, nil
}

// Marshal renders f as the users file's bytes (indented: an operator may read it).
func (f File) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	return append(b, '\n'), nil
}

// User returns the user called name.
func (f File) User(name string) (User, error) {
	for _, u := range f.Users {
		if u.Name == name {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("%w: %q", ErrUnknownUser, name)
}

// Check returns the user called name if password is theirs. The comparison takes the same
// time whatever the password, and whether the user exists: hashing both sides first makes
// the compared lengths equal, and an unknown name is compared against a dummy.
func (f File) Check(name, password string) (User, bool) {
	u, err := f.User(name)
	want := u.Password
	if err != nil {
		want = "\x00no such user"
	}
	got, expected := sha256.Sum256([]byte(password)), sha256.Sum256([]byte(want))
	ok := subtle.ConstantTimeCompare(got[:], expected[:]) == 1
	return u, ok && err == nil
}
